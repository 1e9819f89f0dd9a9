//! Asking the complaints service, which holds the grid organisation, for the
//! grids of a community (the care figures of a community are those of its
//! grids), with a deadline.

use std::time::Duration;

use shequ_chassis::grpc::{PeerChannel, Peers};
use shequ_proto::complaints::v1 as complaints;
use shequ_proto::complaints::v1::organisation_service_client::OrganisationServiceClient;
use tonic::Status;

use crate::domain::{CommunityId, GridId};

#[derive(Debug, Clone)]
pub(crate) struct Organisation {
    client: OrganisationServiceClient<PeerChannel>,
    timeout: Duration,
}

impl Organisation {
    pub(crate) fn new(
        peers: &Peers,
        complaints_url: &str,
        timeout: Duration,
    ) -> Result<Self, shequ_chassis::Error> {
        let channel = peers.channel("SHEQU_COMPLAINTS_URL", complaints_url, timeout)?;
        Ok(Self {
            client: OrganisationServiceClient::new(channel),
            timeout,
        })
    }

    /// The grids of `community`: NotFound for a community the organisation
    /// does not have, Unavailable while the complaints service cannot say.
    pub(crate) async fn grids(&self, community: &CommunityId) -> Result<Vec<GridId>, Status> {
        let mut client = self.client.clone();
        let call = client.get_organisation(complaints::GetOrganisationRequest {});
        let organisation = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => answer.into_inner().organisation.unwrap_or_default(),
            Ok(Err(status)) => {
                return Err(Status::unavailable(format!(
                    "the complaints service, which holds the organisation, answered {:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
            Err(_) => {
                return Err(Status::unavailable(
                    "the complaints service, which holds the organisation, did not answer in time",
                ));
            }
        };
        organisation
            .communities
            .into_iter()
            .find(|c| c.id == community.as_str())
            .map(|c| {
                c.grids
                    .into_iter()
                    .map(|g| GridId::from_stored(g.id))
                    .collect()
            })
            .ok_or_else(|| Status::not_found(format!("community {community}")))
    }
}
