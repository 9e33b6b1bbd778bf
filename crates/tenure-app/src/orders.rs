//! Orders and interactions: recording, changing and deleting them; each write refreshes the
//! customer's aggregates in the same transaction and emits its event.

use tenure_domain::access::Permission;
use tenure_domain::catalog::{Order, OrderInput, OrderPatch};
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::{CustomerId, InteractionId, OrderId};
use tenure_domain::interaction::{Interaction, InteractionInput, InteractionPatch};
use tenure_domain::validation::{Collector, positive_id};

use crate::{App, AppResult, Listed, PageRequest, listed, require};

/// A record of a customer as given: the customer's id checked beside what `parse` checks,
/// every field at fault reported at once.
fn of_customer<T>(
    customer_id: i64,
    parse: impl FnOnce(&mut Collector) -> Option<T>,
) -> AppResult<(CustomerId, T)> {
    let mut c = Collector::new();
    let customer = c.check("customer_id", positive_id(customer_id));
    let fields = parse(&mut c);
    c.finish()?;
    match (customer, fields) {
        (Some(customer), Some(fields)) => Ok((CustomerId(customer), fields)),
        _ => Err(crate::AppError::Internal(
            "input passed its checks but did not parse".into(),
        )),
    }
}

impl App {
    /// Records an order of `customer_id`.
    pub async fn record_order(
        &self,
        actor: &Actor,
        customer_id: i64,
        input: OrderInput,
    ) -> AppResult<Order> {
        require(actor, Permission::WriteCustomers)?;
        let (customer, fields) =
            of_customer(customer_id, |c| input.parse(c, &self.input_context()))?;
        self.check_owner(actor, customer).await?;
        let data = fields.for_customer(customer);
        let mut uow = self.begin(actor).await?;
        let order = uow.tx.create_order(&data).await?;
        uow.emit(Event::OrderRecorded {
            order: order.id,
            customer: order.data.customer_id,
        });
        uow.commit().await?;
        Ok(order)
    }

    /// Changes an order (status, time, amounts, lines, even its customer); the aggregates of
    /// both customers follow.
    pub async fn update_order(
        &self,
        actor: &Actor,
        id: OrderId,
        patch: OrderPatch,
    ) -> AppResult<Order> {
        require(actor, Permission::WriteCustomers)?;
        let ctx = self.input_context();
        let mut uow = self.begin(actor).await?;
        let before = uow.tx.get_order_for_update(id).await?;
        let mut data = before.data.clone();
        patch.apply(&mut data, &ctx)?;
        let order = uow.tx.update_order(&before, &data).await?;
        uow.emit(Event::OrderUpdated {
            order: id,
            customer: order.data.customer_id,
            previous_customer: before.data.customer_id,
        });
        uow.commit().await?;
        Ok(order)
    }

    pub async fn delete_order(&self, actor: &Actor, id: OrderId) -> AppResult<()> {
        require(actor, Permission::DeleteCustomers)?;
        let mut uow = self.begin(actor).await?;
        let customer = uow.tx.delete_order(id).await?;
        uow.emit(Event::OrderDeleted {
            order: id,
            customer,
        });
        uow.commit().await?;
        Ok(())
    }

    pub async fn get_order(&self, actor: &Actor, id: OrderId) -> AppResult<Order> {
        require(actor, Permission::ReadAggregates)?;
        let order = self.store().get_order(id).await?;
        self.check_owner(actor, order.data.customer_id).await?;
        Ok(order)
    }

    /// Orders in id order, optionally of one customer.
    pub async fn list_orders(
        &self,
        actor: &Actor,
        customer: Option<CustomerId>,
        page: &PageRequest,
    ) -> AppResult<Listed<Order>> {
        require(actor, Permission::ReadAggregates)?;
        self.check_list_owner(actor, customer).await?;
        let (limit, after) = (page.limit()?, page.after::<OrderId>()?);
        Ok(listed(
            self.store().list_orders(customer, after, limit).await?,
            |o| o,
        ))
    }

    /// Records an interaction with `customer_id`.
    pub async fn record_interaction(
        &self,
        actor: &Actor,
        customer_id: i64,
        input: InteractionInput,
    ) -> AppResult<Interaction> {
        require(actor, Permission::WriteCustomers)?;
        let (customer, fields) =
            of_customer(customer_id, |c| input.parse(c, &self.input_context()))?;
        self.check_owner(actor, customer).await?;
        let data = fields.for_customer(customer);
        let mut uow = self.begin(actor).await?;
        let interaction = uow.tx.create_interaction(&data).await?;
        uow.emit(Event::InteractionRecorded {
            interaction: interaction.id,
            customer: interaction.data.customer_id,
        });
        uow.commit().await?;
        Ok(interaction)
    }

    /// Changes an interaction (its customer stays).
    pub async fn update_interaction(
        &self,
        actor: &Actor,
        id: InteractionId,
        patch: InteractionPatch,
    ) -> AppResult<Interaction> {
        require(actor, Permission::WriteCustomers)?;
        let ctx = self.input_context();
        let mut uow = self.begin(actor).await?;
        let before = uow.tx.get_interaction_for_update(id).await?;
        let mut data = before.data.clone();
        patch.apply(&mut data, &ctx)?;
        let interaction = uow.tx.update_interaction(id, &data).await?;
        uow.emit(Event::InteractionUpdated {
            interaction: id,
            customer: interaction.data.customer_id,
        });
        uow.commit().await?;
        Ok(interaction)
    }

    pub async fn delete_interaction(&self, actor: &Actor, id: InteractionId) -> AppResult<()> {
        require(actor, Permission::DeleteCustomers)?;
        let mut uow = self.begin(actor).await?;
        let customer = uow.tx.delete_interaction(id).await?;
        uow.emit(Event::InteractionDeleted {
            interaction: id,
            customer,
        });
        uow.commit().await?;
        Ok(())
    }

    pub async fn get_interaction(
        &self,
        actor: &Actor,
        id: InteractionId,
    ) -> AppResult<Interaction> {
        require(actor, Permission::ReadCustomers)?;
        let interaction = self.store().get_interaction(id).await?;
        self.check_owner(actor, interaction.data.customer_id)
            .await?;
        Ok(interaction)
    }

    /// Interactions in id order, optionally of one customer.
    pub async fn list_interactions(
        &self,
        actor: &Actor,
        customer: Option<CustomerId>,
        page: &PageRequest,
    ) -> AppResult<Listed<Interaction>> {
        require(actor, Permission::ReadCustomers)?;
        self.check_list_owner(actor, customer).await?;
        let (limit, after) = (page.limit()?, page.after::<InteractionId>()?);
        Ok(listed(
            self.store()
                .list_interactions(customer, after, limit)
                .await?,
            |i| i,
        ))
    }
}
