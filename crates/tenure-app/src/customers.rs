//! Customers: create, read, update, delete, list and search, the timeline and the ranked
//! at-risk list. Every customer leaves here projected for the actor's role.

use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::customer::{Customer, CustomerData, CustomerInput, CustomerPatchInput};
use tenure_domain::ids::CustomerId;
use tenure_domain::prediction::{AtRiskPosition, Prediction};
use tenure_domain::search::SearchPosition;
use tenure_domain::timeline::TimelinePosition;
use tenure_domain::validation::Collector;
use tenure_store::customers::CustomerFilter;
use tenure_store::timeline::TimelineEntry;

use crate::{App, AppError, AppResult, Listed, PageRequest, listed, require};

/// Longest free-text search, in characters.
const QUERY_MAX: usize = 200;

impl App {
    /// Creates a customer.
    pub async fn create_customer(
        &self,
        actor: &Actor,
        input: CustomerInput<'_>,
    ) -> AppResult<Customer> {
        require(actor, Permission::WriteCustomers)?;
        let mut c = Collector::new();
        let (data, consents) = input.parse(&mut c, &self.input_context());
        c.finish()?;
        let mut uow = self.begin(actor).await?;
        let customer = uow.tx.create_customer(&data, &consents).await?;
        uow.emit(Event::CustomerCreated {
            customer: customer.id,
        });
        uow.commit().await?;
        Ok(customer.seen_by(actor.role))
    }

    /// Applies a change; with `expected_version`, only if the customer is still at it.
    pub async fn update_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
        input: CustomerPatchInput,
        expected_version: Option<i64>,
    ) -> AppResult<Customer> {
        require(actor, Permission::WriteCustomers)?;
        self.check_owner(actor, id).await?;
        let mut c = Collector::new();
        let patch = input.parse(&mut c, &self.input_context());
        c.finish()?;
        let mut uow = self.begin(actor).await?;
        let customer = uow.tx.update_customer(id, &patch, expected_version).await?;
        uow.emit(Event::CustomerUpdated { customer: id });
        uow.commit().await?;
        Ok(customer.seen_by(actor.role))
    }

    /// Deletes a customer with everything that belongs to them.
    pub async fn delete_customer(&self, actor: &Actor, id: CustomerId) -> AppResult<()> {
        require(actor, Permission::DeleteCustomers)?;
        let mut uow = self.begin(actor).await?;
        uow.tx.delete_customer(id).await?;
        uow.emit(Event::CustomerDeleted { customer: id });
        uow.commit().await?;
        Ok(())
    }

    /// Loads many already-checked customers at once (synthetic data for benchmarks and
    /// trying things out); one change-log entry for the batch.
    pub async fn load_customers(
        &self,
        actor: &Actor,
        batch: &[CustomerData],
    ) -> AppResult<Vec<CustomerId>> {
        require(actor, Permission::WriteCustomers)?;
        let mut uow = self.begin(actor).await?;
        let ids = uow.tx.insert_customers(batch).await?;
        uow.emit(Event::CustomersLoaded {
            customers: ids.len() as u64,
        });
        uow.commit().await?;
        Ok(ids)
    }

    /// A customer with their aggregates and, once the models have run, their prediction.
    pub async fn get_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
    ) -> AppResult<(Customer, Option<Prediction>)> {
        require(actor, Permission::ReadAggregates)?;
        self.check_owner(actor, id).await?;
        let customer = self.store().get_customer(id).await?;
        let prediction = self.store().prediction(id).await?;
        Ok((customer.seen_by(actor.role), prediction))
    }

    /// The customer a stored or merged-away external id names, if any.
    pub async fn find_customer_by_external_id(
        &self,
        actor: &Actor,
        external_id: &str,
    ) -> AppResult<Option<Customer>> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self
            .store()
            .find_customer_by_external_id(external_id)
            .await?
            .map(|c| c.seen_by(actor.role)))
    }

    /// Customers matching every filter, in id order; with a free-text `q`, search results
    /// in match order. Searching by personal data needs a role that may read it.
    pub async fn list_customers(
        &self,
        actor: &Actor,
        mut filter: CustomerFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<Customer>> {
        require(actor, Permission::ReadAggregates)?;
        if let Some(me) = self.owner_scope(actor).await? {
            filter.owner_id = Some(me);
        }
        let personal = filter.q.is_some() || filter.email.is_some() || filter.external_id.is_some();
        if personal && actor.role.sees_masked_personal_data() {
            return Err(AppError::Forbidden(format!(
                "the {} role may not search by personal data",
                actor.role
            )));
        }
        check_filter(&filter)?;
        let limit = page.limit()?;
        let role = actor.role;
        if filter.q.is_some() {
            let after = page.after::<SearchPosition>()?;
            let found = self.store().search_customers(&filter, after, limit).await?;
            Ok(listed(found, |c| c.seen_by(role)))
        } else {
            let after = page.after::<CustomerId>()?;
            let found = self.store().list_customers(&filter, after, limit).await?;
            Ok(listed(found, |c| c.seen_by(role)))
        }
    }

    /// The ranked at-risk list: customers by churn risk times CLV, highest first, each with
    /// its prediction.
    pub async fn at_risk(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> AppResult<Listed<(Customer, Prediction)>> {
        require(actor, Permission::ReadAggregates)?;
        let (limit, after) = (page.limit()?, page.after::<AtRiskPosition>()?);
        let role = actor.role;
        let owner = self.owner_scope(actor).await?;
        let found = self.store().at_risk(after, owner, limit).await?;
        Ok(listed(found, |(c, p)| (c.seen_by(role), p)))
    }

    /// Everything about a customer, newest first.
    pub async fn timeline(
        &self,
        actor: &Actor,
        id: CustomerId,
        page: &PageRequest,
    ) -> AppResult<Listed<TimelineEntry>> {
        require(actor, Permission::ReadCustomers)?;
        self.check_owner(actor, id).await?;
        let (limit, before) = (page.limit()?, page.after::<TimelinePosition>()?);
        let found = self.store().timeline(id, before, limit).await?;
        Ok(listed(found, |e| e))
    }
}

/// Checks the filters a client gave.
fn check_filter(f: &CustomerFilter) -> AppResult<()> {
    let mut c = Collector::new();
    if f.q.as_ref().is_some_and(|q| q.chars().count() > QUERY_MAX) {
        c.push("q", format!("must be at most {QUERY_MAX} characters"));
    }
    for (name, v) in [("clv_min", f.clv_min), ("clv_max", f.clv_max)] {
        if v.is_some_and(|v| !v.is_finite()) {
            c.push(name, "must be a finite number");
        }
    }
    for (name, v) in [
        ("p_alive_min", f.p_alive_min),
        ("p_alive_max", f.p_alive_max),
    ] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            c.push(name, "must be a probability between 0 and 1");
        }
    }
    c.finish().map_err(AppError::BadParameter)
}

impl App {
    /// Recomputes every customer's aggregates from raw orders and interactions. Returns
    /// the number of customers.
    pub async fn rebuild_aggregates(&self, actor: &Actor) -> AppResult<u64> {
        require(actor, Permission::WriteCustomers)?;
        let mut uow = self.begin(actor).await?;
        let n = uow.tx.rebuild_aggregates().await?;
        uow.emit(Event::AggregatesRebuilt { customers: n });
        uow.commit().await?;
        Ok(n)
    }
}
