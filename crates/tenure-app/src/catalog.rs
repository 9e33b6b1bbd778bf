//! Accounts, the product catalogue, and the recommendations built on it.

use tenure_analytics::recommend::recommend_from;
use tenure_domain::access::Permission;
use tenure_domain::catalog::{Category, Product, ProductInput, ProductPatch, parse_category_name};
use tenure_domain::changes::{Actor, Event};
use tenure_domain::customer::{Account, AccountInput, AccountPatch};
use tenure_domain::ids::{AccountId, CategoryId, CustomerId, ProductId};
use tenure_domain::validation::{Collector, positive_id};
use tenure_store::recommendations::Recommendation;

use crate::{App, AppError, AppResult, Listed, PageRequest, listed, require};

/// Most recommendations asked for at once.
pub const RECOMMENDATIONS_MAX: u32 = 100;

fn recommendation_limit(limit: Option<u32>) -> AppResult<u32> {
    match limit {
        None => Ok(10),
        Some(n @ 1..=RECOMMENDATIONS_MAX) => Ok(n),
        Some(_) => Err(AppError::parameter(
            "limit",
            format!("must be between 1 and {RECOMMENDATIONS_MAX}"),
        )),
    }
}

impl App {
    pub async fn create_account(&self, actor: &Actor, input: AccountInput) -> AppResult<Account> {
        require(actor, Permission::WriteCatalog)?;
        let mut c = Collector::new();
        let data = input.parse(&mut c);
        c.finish()?;
        let data = data.ok_or_else(|| AppError::Internal("a checked account is missing".into()))?;
        let mut uow = self.begin(actor).await?;
        let account = uow.tx.create_account(&data).await?;
        uow.emit(Event::AccountCreated {
            account: account.id,
        });
        uow.commit().await?;
        Ok(account)
    }

    pub async fn update_account(
        &self,
        actor: &Actor,
        id: AccountId,
        patch: AccountPatch,
    ) -> AppResult<Account> {
        require(actor, Permission::WriteCatalog)?;
        let mut uow = self.begin(actor).await?;
        let account = uow.tx.update_account(id, |d| patch.apply(d)).await?;
        uow.emit(Event::AccountUpdated { account: id });
        uow.commit().await?;
        Ok(account)
    }

    pub async fn delete_account(&self, actor: &Actor, id: AccountId) -> AppResult<()> {
        require(actor, Permission::WriteCatalog)?;
        let mut uow = self.begin(actor).await?;
        uow.tx.delete_account(id).await?;
        uow.emit(Event::AccountDeleted { account: id });
        uow.commit().await?;
        Ok(())
    }

    pub async fn get_account(&self, actor: &Actor, id: AccountId) -> AppResult<Account> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().get_account(id).await?)
    }

    pub async fn list_accounts(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> AppResult<Listed<Account>> {
        require(actor, Permission::ReadAggregates)?;
        let (limit, after) = (page.limit()?, page.after::<AccountId>()?);
        Ok(listed(
            self.store().list_accounts(after, limit).await?,
            |a| a,
        ))
    }

    /// Creates a product, in the category with id `category_id` when given.
    pub async fn create_product(
        &self,
        actor: &Actor,
        input: ProductInput,
        category_id: Option<i64>,
    ) -> AppResult<Product> {
        require(actor, Permission::WriteCatalog)?;
        let mut c = Collector::new();
        let category = c.check_opt("category_id", category_id, positive_id);
        let data = input.parse(&mut c, &self.input_context());
        c.finish()?;
        let mut data =
            data.ok_or_else(|| AppError::Internal("a checked product is missing".into()))?;
        data.category_id = category.map(CategoryId);
        let mut uow = self.begin(actor).await?;
        let product = uow.tx.create_product(&data).await?;
        uow.emit(Event::ProductCreated {
            product: product.id,
        });
        uow.commit().await?;
        Ok(product)
    }

    pub async fn update_product(
        &self,
        actor: &Actor,
        id: ProductId,
        patch: ProductPatch,
    ) -> AppResult<Product> {
        require(actor, Permission::WriteCatalog)?;
        let mut uow = self.begin(actor).await?;
        let product = uow.tx.update_product(id, |d| patch.apply(d)).await?;
        uow.emit(Event::ProductUpdated { product: id });
        uow.commit().await?;
        Ok(product)
    }

    pub async fn get_product(&self, actor: &Actor, id: ProductId) -> AppResult<Product> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().get_product(id).await?)
    }

    pub async fn list_products(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> AppResult<Listed<Product>> {
        require(actor, Permission::ReadAggregates)?;
        let (limit, after) = (page.limit()?, page.after::<ProductId>()?);
        Ok(listed(
            self.store().list_products(after, limit).await?,
            |p| p,
        ))
    }

    pub async fn create_category(
        &self,
        actor: &Actor,
        name: &str,
        parent_id: Option<i64>,
    ) -> AppResult<Category> {
        require(actor, Permission::WriteCatalog)?;
        let mut c = Collector::new();
        let name = c.check("name", parse_category_name(name));
        let parent = c.check_opt("parent_id", parent_id, positive_id);
        c.finish()?;
        let mut uow = self.begin(actor).await?;
        let category = uow
            .tx
            .create_category(&name.unwrap_or_default(), parent.map(CategoryId))
            .await?;
        uow.emit(Event::CategoryCreated {
            category: category.id,
        });
        uow.commit().await?;
        Ok(category)
    }

    pub async fn list_categories(&self, actor: &Actor) -> AppResult<Vec<Category>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().list_categories().await?)
    }

    /// Active products most often bought by the customers who bought `product`.
    pub async fn also_bought(
        &self,
        actor: &Actor,
        product: ProductId,
        limit: Option<u32>,
    ) -> AppResult<Vec<Recommendation>> {
        require(actor, Permission::ReadAggregates)?;
        let limit = recommendation_limit(limit)?;
        Ok(self.store().also_bought(product, limit).await?)
    }

    /// A customer's next best offers: active products they have not bought, most like what
    /// they have bought first, then the best-sellers.
    pub async fn next_best_offers(
        &self,
        actor: &Actor,
        customer: CustomerId,
        limit: Option<u32>,
    ) -> AppResult<Vec<Recommendation>> {
        require(actor, Permission::ReadCustomers)?;
        let limit = recommendation_limit(limit)?;
        let owned = self.store().products_owned(customer).await?;
        let partners = self.store().active_partners(&owned).await?;
        let best_sellers = self
            .store()
            .best_sellers(i64::from(limit) + owned.len() as i64)
            .await?;
        let together = |p: ProductId| {
            partners
                .iter()
                .filter(|s| s.product == p)
                .map(|s| i64::from(s.customers))
                .max()
                .unwrap_or(0)
        };
        let ranked: Vec<(ProductId, f64, i64)> = recommend_from(
            partners.iter().copied(),
            &owned,
            limit as usize,
            best_sellers,
        )
        .into_iter()
        .map(|(p, score)| (p, score, together(p)))
        .collect();
        Ok(self.store().ranked_products(ranked).await?)
    }
}
