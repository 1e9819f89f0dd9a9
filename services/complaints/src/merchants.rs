//! Asking the merchant alliance about a complaint's merchant, with a deadline:
//! a resident's complaint is never refused or held up because a neighbour
//! service is down; it is marked unverified instead.

use std::time::Duration;

use shequ_chassis::grpc::{PeerChannel, Peers};
use shequ_proto::alliance::v1::GetMerchantRequest;
use shequ_proto::alliance::v1::merchant_service_client::MerchantServiceClient;
use tonic::Code;

use crate::domain::MerchantId;
use crate::domain::kinds::MerchantCheck;

/// The merchant-alliance service as the complaints service sees it.
#[derive(Debug, Clone)]
pub(crate) struct MerchantDirectory {
    client: MerchantServiceClient<PeerChannel>,
    timeout: Duration,
}

impl MerchantDirectory {
    /// Connects lazily: the alliance need not be up when complaints starts.
    pub(crate) fn new(
        peers: &Peers,
        url: &str,
        timeout: Duration,
    ) -> Result<Self, shequ_chassis::Error> {
        let channel = peers.channel("SHEQU_ALLIANCE_URL", url, timeout)?;
        Ok(Self {
            client: MerchantServiceClient::new(channel),
            timeout,
        })
    }

    /// Whether `merchant_id` is a member, or `Unverified` when the alliance does
    /// not answer within the deadline.
    pub(crate) async fn check(&self, merchant_id: &MerchantId) -> MerchantCheck {
        let request = GetMerchantRequest {
            merchant_id: merchant_id.to_string(),
            ..Default::default()
        };
        let mut client = self.client.clone();
        match tokio::time::timeout(self.timeout, client.get_merchant(request)).await {
            Ok(Ok(_)) => MerchantCheck::Verified,
            Ok(Err(status)) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                MerchantCheck::NotAMember
            }
            Ok(Err(status)) => {
                tracing::warn!(%merchant_id, code = ?status.code(), "merchant alliance did not verify the merchant");
                MerchantCheck::Unverified
            }
            Err(_) => {
                tracing::warn!(%merchant_id, timeout_ms = self.timeout.as_millis() as u64, "merchant alliance did not answer in time");
                MerchantCheck::Unverified
            }
        }
    }
}
