//! Recommendations: what the co-occurrence model reads (who bought which product, and
//! when first), what it stores (each product's most similar partners and its number of
//! buyers), and the two questions asked of it — "bought X, also bought" and a customer's
//! next best offers, which exclude what the customer already bought and inactive products.

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Row};
use tenure_analytics::recommend::Similar;
use tenure_domain::catalog::{OrderStatus, Product};
use tenure_domain::changes::{Actor, Change};
use tenure_domain::ids::{CustomerId, ProductId};

use crate::sql::{Bulk, Select};
use crate::{Store, StoreResult};

/// One customer's first purchase of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstBought {
    pub customer: CustomerId,
    pub product: ProductId,
    /// Days since 1970-01-01 (UTC) of the first completed order with the product.
    pub day: i64,
}

/// A product recommended, with its score (summed similarity; 0 for a best-seller offered
/// to fill the list).
#[derive(Debug, Clone)]
pub struct Recommendation {
    pub product: Product,
    pub score: f64,
    /// Customers who bought it together with the product asked about (for "also bought";
    /// the most such customers over the products owned, for next best offers).
    pub customers: i64,
}

impl Store {
    /// Every (customer, product) pair from completed orders, with the day it was first
    /// bought, in customer order.
    pub async fn products_first_bought(&self) -> StoreResult<Vec<FirstBought>> {
        let mut rows = sqlx::query(
            "SELECT l.customer_id, l.product_id, MIN(o.purchase_day) AS day \
             FROM order_lines l JOIN orders o ON o.id = l.order_id \
             WHERE l.product_id IS NOT NULL AND o.status = $1 \
             GROUP BY l.customer_id, l.product_id ORDER BY l.customer_id, l.product_id",
        )
        .bind(OrderStatus::Completed.as_str())
        .fetch(self.pool());
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await? {
            out.push(FirstBought {
                customer: CustomerId(r.try_get("customer_id")?),
                product: ProductId(r.try_get("product_id")?),
                day: r.try_get("day")?,
            });
        }
        Ok(out)
    }

    /// Replaces the stored model: each product's similar partners and each product's
    /// number of buyers, in one transaction.
    pub async fn replace_associations(
        &self,
        similar: &[(ProductId, Similar<ProductId>)],
        buyers: &[(ProductId, i64)],
        by: &Actor,
        change: &Change,
    ) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        for table in [
            "DELETE FROM product_associations",
            "DELETE FROM product_buyers",
        ] {
            sqlx::query(table).execute(&mut *w.tx).await?;
        }
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO product_associations (product_id, other_id, customers, score)",
            4,
        );
        for (product, s) in similar {
            rows.row(&mut w.tx, |r| {
                r.add(product.0)?;
                r.add(s.product.0)?;
                r.add(i64::from(s.customers))?;
                r.add(s.score)
            })
            .await?;
        }
        rows.flush(&mut w.tx).await?;
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO product_buyers (product_id, customers)",
            2,
        );
        for (product, n) in buyers {
            rows.row(&mut w.tx, |r| {
                r.add(product.0)?;
                r.add(*n)
            })
            .await?;
        }
        rows.flush(&mut w.tx).await?;
        w.append_change(by, change).await?;
        w.commit().await
    }

    /// Active products most often bought together with `product`, best first.
    pub async fn also_bought(
        &self,
        product: ProductId,
        limit: u32,
    ) -> StoreResult<Vec<Recommendation>> {
        self.get_product(product).await?;
        let rows = sqlx::query(
            "SELECT other_id, customers, score FROM product_associations a \
             JOIN products p ON p.id = a.other_id \
             WHERE a.product_id = $1 AND p.active = 1 \
             ORDER BY score DESC, customers DESC, other_id LIMIT $2",
        )
        .bind(product.0)
        .bind(i64::from(limit.clamp(1, 100)))
        .fetch_all(self.pool())
        .await?;
        let mut ranked = Vec::with_capacity(rows.len());
        for r in &rows {
            ranked.push((
                ProductId(r.try_get("other_id")?),
                r.try_get::<f64, _>("score")?,
                r.try_get::<i64, _>("customers")?,
            ));
        }
        self.with_products(ranked).await
    }

    /// The products a customer has bought, in id order.
    pub async fn products_owned(&self, customer: CustomerId) -> StoreResult<Vec<ProductId>> {
        self.require_customer(customer).await?;
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT DISTINCT product_id FROM order_lines \
             WHERE customer_id = $1 AND product_id IS NOT NULL ORDER BY product_id",
        )
        .bind(customer.0)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(ProductId)
        .collect())
    }

    /// The stored similar partners of these products that are active.
    pub async fn active_partners(
        &self,
        products: &[ProductId],
    ) -> StoreResult<Vec<Similar<ProductId>>> {
        let mut partners = Vec::new();
        for chunk in products.chunks(500) {
            let mut s = Select::new(
                "SELECT a.other_id, a.customers, a.score FROM product_associations a \
                 JOIN products p ON p.id = a.other_id",
            );
            s.filter_in(
                "a.product_id IN ({})",
                &chunk.iter().map(|p| p.0).collect::<Vec<_>>(),
            )?;
            s.filter("p.active = {}", 1_i64)?;
            let (sql, args) = s.finish_unbounded("");
            let mut rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch(self.pool());
            while let Some(r) = rows.try_next().await? {
                partners.push(Similar {
                    product: ProductId(r.try_get("other_id")?),
                    customers: u32::try_from(r.try_get::<i64, _>("customers")?).unwrap_or(u32::MAX),
                    score: r.try_get("score")?,
                });
            }
        }
        Ok(partners)
    }

    /// The `limit` active products with the most buyers, most first.
    pub async fn best_sellers(&self, limit: i64) -> StoreResult<Vec<(ProductId, u32)>> {
        sqlx::query(
            "SELECT b.product_id, b.customers FROM product_buyers b \
             JOIN products p ON p.id = b.product_id WHERE p.active = 1 \
             ORDER BY b.customers DESC, b.product_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok((
                ProductId(r.try_get("product_id")?),
                u32::try_from(r.try_get::<i64, _>("customers")?).unwrap_or(u32::MAX),
            ))
        })
        .collect()
    }

    /// The products of a ranking (product, score, customers), in its order.
    pub async fn ranked_products(
        &self,
        ranked: Vec<(ProductId, f64, i64)>,
    ) -> StoreResult<Vec<Recommendation>> {
        self.with_products(ranked).await
    }

    /// The products of a ranking, in its order.
    async fn with_products(
        &self,
        ranked: Vec<(ProductId, f64, i64)>,
    ) -> StoreResult<Vec<Recommendation>> {
        let mut out = Vec::with_capacity(ranked.len());
        for (id, score, customers) in ranked {
            out.push(Recommendation {
                product: self.get_product(id).await?,
                score,
                customers,
            });
        }
        Ok(out)
    }
}
