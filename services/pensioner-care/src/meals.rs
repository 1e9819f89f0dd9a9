//! Asking merchant-alliance for the nearest dining merchant with elder meals in
//! an elder's 15-minute circle, with a deadline.

use std::time::Duration;

use shequ_chassis::grpc::{PeerChannel, Peers, geo_point};
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::alliance::v1::merchant_service_client::MerchantServiceClient;

use crate::domain::MerchantId;
use crate::domain::elder::Location;
use crate::domain::services::{MEAL_TAG, MEAL_WALK_MINUTES};

/// The merchant a meal is booked with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MealMerchant {
    pub id: MerchantId,
    pub name: String,
    pub distance_metres: f64,
}

/// Why no merchant was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoMeal {
    /// None within the circle.
    NoneNearby,
    /// The alliance did not answer in time.
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub(crate) struct MealFinder {
    client: MerchantServiceClient<PeerChannel>,
    timeout: Duration,
}

impl MealFinder {
    pub(crate) fn new(
        peers: &Peers,
        alliance_url: &str,
        timeout: Duration,
    ) -> Result<Self, shequ_chassis::Error> {
        let channel = peers.channel("SHEQU_ALLIANCE_URL", alliance_url, timeout)?;
        Ok(Self {
            client: MerchantServiceClient::new(channel),
            timeout,
        })
    }

    /// The nearest dining merchant offering elder meals within the walk; an
    /// answer whose merchant has no id is the alliance unavailable.
    pub(crate) async fn nearest(&self, home: Location) -> Result<MealMerchant, NoMeal> {
        let request = alliance::FindNearbyRequest {
            point: Some(geo_point(home)),
            category: alliance::Category::Dining as i32,
            service_tag: MEAL_TAG.into(),
            walk_minutes: MEAL_WALK_MINUTES,
            open_now: false,
            limit: 1,
        };
        let mut client = self.client.clone();
        let found = match tokio::time::timeout(self.timeout, client.find_nearby(request)).await {
            Ok(Ok(found)) => found.into_inner(),
            Ok(Err(status)) => {
                return Err(NoMeal::Unavailable(format!(
                    "{:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
            Err(_) => return Err(NoMeal::Unavailable("no answer in time".into())),
        };
        let nearest = found
            .merchants
            .into_iter()
            .next()
            .ok_or(NoMeal::NoneNearby)?;
        let merchant = nearest.merchant.unwrap_or_default();
        let id = MerchantId::parse("merchant.id", &merchant.id)
            .map_err(|error| NoMeal::Unavailable(format!("the alliance answered {error}")))?;
        Ok(MealMerchant {
            id,
            name: merchant.name,
            distance_metres: nearest.distance_metres,
        })
    }
}
