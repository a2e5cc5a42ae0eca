//! `RefusingOrderWriter`: the default [`OrderWriter`], which refuses every write before
//! anything is sent and knows of no orders, so a gateway without a configured paper writer can
//! never place one.

use async_trait::async_trait;

use crate::domain::ids::{AccountId, BrokerOrderId, IdempotencyKey};
use crate::domain::order_intent::{BracketIntent, OrderIntent};
use crate::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};

/// The writer's name, also the config spelling that selects it.
const NAME: &str = "refusing";

/// An order writer that refuses every write, in either mode.
#[derive(Debug, Clone, Copy)]
pub struct RefusingOrderWriter {
    mode: WriterMode,
}

impl Default for RefusingOrderWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RefusingOrderWriter {
    /// The refusing paper writer.
    pub fn new() -> Self {
        Self::for_mode(WriterMode::Paper)
    }

    /// The refusing writer for `mode`.
    pub fn for_mode(mode: WriterMode) -> Self {
        Self { mode }
    }

    fn refusal(&self) -> WriteError {
        WriteError::Refused {
            reason: format!(
                "the configured {mode} order writer is `{NAME}`; choose client_portal or \
                 local_candidate to place {mode} orders",
                mode = self.mode.as_str()
            ),
        }
    }
}

#[async_trait]
impl OrderWriter for RefusingOrderWriter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn mode(&self) -> WriterMode {
        self.mode
    }

    async fn submit(
        &self,
        _order: &OrderIntent,
        _client_order_id: &IdempotencyKey,
    ) -> Result<PlacedOrder, WriteError> {
        Err(self.refusal())
    }

    async fn submit_bracket(
        &self,
        _bracket: &BracketIntent,
        _client_order_id: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        Err(self.refusal())
    }

    async fn modify(
        &self,
        _order_id: &BrokerOrderId,
        _replacement: &OrderIntent,
    ) -> Result<PlacedOrder, WriteError> {
        Err(self.refusal())
    }

    async fn cancel(
        &self,
        _account: &AccountId,
        _order_id: &BrokerOrderId,
    ) -> Result<CancelAck, WriteError> {
        Err(self.refusal())
    }

    /// Nothing was ever placed through this writer, so no order is known.
    async fn order(
        &self,
        _account: &AccountId,
        _order_id: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        Ok(None)
    }

    /// As [`RefusingOrderWriter::order`]: no client order id was ever used.
    async fn find_by_client_order_id(
        &self,
        _account: &AccountId,
        _client_order_id: &IdempotencyKey,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error_code::ErrorCode;
    use crate::domain::ids::ContractId;
    use crate::domain::money::{Price, Quantity};
    use crate::domain::order::{OrderSide, OrderType, TimeInForce};
    use crate::domain::order_intent::IntentParts;

    fn intent() -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse("DU1234567").unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::parse("10").unwrap(),
            order_type: OrderType::Limit,
            limit_price: Some(Price::parse("190").unwrap()),
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    fn assert_refused(error: WriteError) {
        assert_eq!(error.code(), ErrorCode::OrderWriterRefused);
        assert!(error.is_definitive());
        assert!(error.to_string().contains("`refusing`"), "{error}");
    }

    #[tokio::test]
    async fn every_write_is_refused() {
        let writer = RefusingOrderWriter::new();
        let key = IdempotencyKey::parse("k").unwrap();
        let order_id = BrokerOrderId::parse("1").unwrap();
        let account = AccountId::parse("DU1234567").unwrap();
        let bracket = BracketIntent::new(
            intent(),
            Price::parse("210").unwrap(),
            Price::parse("180").unwrap(),
        )
        .unwrap();
        assert_eq!(writer.name(), "refusing");
        assert_refused(writer.submit(&intent(), &key).await.unwrap_err());
        assert_refused(writer.submit_bracket(&bracket, &key).await.unwrap_err());
        assert_refused(writer.modify(&order_id, &intent()).await.unwrap_err());
        assert_refused(writer.cancel(&account, &order_id).await.unwrap_err());
    }

    #[tokio::test]
    async fn no_order_is_ever_found() {
        let writer = RefusingOrderWriter::new();
        let account = AccountId::parse("DU1234567").unwrap();
        let key = IdempotencyKey::parse("k").unwrap();
        let _ = writer.submit(&intent(), &key).await;
        let order_id = BrokerOrderId::parse("1").unwrap();
        assert_eq!(writer.order(&account, &order_id).await, Ok(None));
        assert_eq!(
            writer.find_by_client_order_id(&account, &key).await,
            Ok(None)
        );
    }
}
