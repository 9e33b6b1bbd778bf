//! The product catalogue: categories and products.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::catalog::{Category, Product, ProductData};
use tenure_domain::ids::{CategoryId, ProductId};

use crate::Page;
use crate::sql::Select;
use crate::sql::{Table, require};
use crate::time::{now_micros, time};
use crate::{Store, StoreError, StoreResult, WriteTx};

const PRODUCT_COLUMNS: &str =
    "id, external_id, name, category_id, price_minor, currency, active, created_at, updated_at";

fn product_from_row(row: &AnyRow) -> StoreResult<Product> {
    Ok(Product {
        id: ProductId(row.try_get("id")?),
        data: ProductData {
            external_id: row.try_get("external_id")?,
            name: row.try_get("name")?,
            category_id: row
                .try_get::<Option<i64>, _>("category_id")?
                .map(CategoryId),
            price_minor: row.try_get("price_minor")?,
            currency: row.try_get("currency")?,
            active: row.try_get::<i64, _>("active")? != 0,
        },
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

async fn check_category(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: Option<CategoryId>,
    field: &'static str,
) -> StoreResult<()> {
    if let Some(c) = id {
        require(tx, Table::Categories, c.0, field).await?;
    }
    Ok(())
}

impl WriteTx<'_> {
    pub async fn create_category(
        &mut self,
        name: &str,
        parent: Option<CategoryId>,
    ) -> StoreResult<Category> {
        check_category(&mut self.tx, parent, "parent_id").await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO product_categories (name, parent_id) VALUES ($1, $2) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(parent.map(|p| p.0))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Category {
            id: CategoryId(id),
            name: name.to_owned(),
            parent_id: parent,
        })
    }

    pub async fn create_product(&mut self, data: &ProductData) -> StoreResult<Product> {
        check_category(&mut self.tx, data.category_id, "category_id").await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO products (external_id, name, category_id, price_minor, currency, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {PRODUCT_COLUMNS}"
        )))
        .bind(data.external_id.clone())
        .bind(data.name.clone())
        .bind(data.category_id.map(|c| c.0))
        .bind(data.price_minor)
        .bind(data.currency.clone())
        .bind(i64::from(data.active))
        .bind(now_micros())
        .fetch_one(&mut *self.tx)
        .await?;
        product_from_row(&row)
    }

    /// Changes a product: `change` edits the current data, read under a row lock so a
    /// concurrent change is not lost.
    pub async fn update_product(
        &mut self,
        id: ProductId,
        change: impl FnOnce(&mut ProductData) -> Result<(), tenure_domain::Invalid>,
    ) -> StoreResult<Product> {
        self.lock(Table::Products, id.0).await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound { what: "product" })?;
        let mut data = product_from_row(&row)?.data;
        change(&mut data).map_err(StoreError::Invalid)?;
        check_category(&mut self.tx, data.category_id, "category_id").await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE products SET external_id = $2, name = $3, category_id = $4, price_minor = $5, currency = $6, \
             active = $7, updated_at = $8 WHERE id = $1 RETURNING {PRODUCT_COLUMNS}"
        )))
        .bind(id.0)
        .bind(data.external_id.clone())
        .bind(data.name.clone())
        .bind(data.category_id.map(|c| c.0))
        .bind(data.price_minor)
        .bind(data.currency.clone())
        .bind(i64::from(data.active))
        .bind(now_micros())
        .fetch_one(&mut *self.tx)
        .await?;
        product_from_row(&row)
    }
}

impl Store {
    pub async fn list_categories(&self) -> StoreResult<Vec<Category>> {
        let rows = sqlx::query("SELECT id, name, parent_id FROM product_categories ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Category {
                    id: CategoryId(r.try_get("id")?),
                    name: r.try_get("name")?,
                    parent_id: r.try_get::<Option<i64>, _>("parent_id")?.map(CategoryId),
                })
            })
            .collect()
    }

    pub async fn get_product(&self, id: ProductId) -> StoreResult<Product> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "product" })?;
        product_from_row(&row)
    }

    pub async fn list_products(
        &self,
        after: Option<ProductId>,
        limit: u32,
    ) -> StoreResult<Page<Product, ProductId>> {
        let mut s = Select::new(
            "SELECT id, external_id, name, category_id, price_minor, currency, active, created_at, updated_at FROM products",
        );
        if let Some(a) = after {
            s.filter("id > {}", a.0)?;
        }
        let limit = i64::from(limit.clamp(1, 1000));
        let (sql, args) = s.finish("ORDER BY id", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(product_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |p| p.id))
    }
}
