//! Asking merchant-alliance for the dining merchants with elder meals in an
//! elder's 15-minute circle, with a deadline, and choosing the nearest one
//! open at the time the meal is for ([`crate::domain::meals::choose`]).
//!
//! The alliance's FindNearby filters by "open now" only, so the circle is
//! asked for without it (as many merchants as one answer holds, nearest
//! first) and each merchant's opening hours, which the answer carries, are
//! read here for the meal's time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shequ_chassis::grpc::{self, PeerChannel, Peers, geo_point};
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::alliance::v1::merchant_service_client::MerchantServiceClient;

use crate::domain::MerchantId;
use crate::domain::elder::Location;
use crate::domain::meals::{Candidate, Choice, choose};
use crate::domain::services::{MEAL_TAG, MEAL_WALK_MINUTES};

/// The most merchants one FindNearby answer holds.
const CIRCLE_LIMIT: u32 = 100;

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
    /// Some within the circle, none open at the meal's time.
    NoneOpen,
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

    /// The nearest dining merchant offering elder meals within the walk that
    /// is open at `at`; an answer whose merchant has no id is the alliance
    /// unavailable.
    pub(crate) async fn nearest_open(
        &self,
        home: Location,
        at: DateTime<Utc>,
    ) -> Result<MealMerchant, NoMeal> {
        let request = alliance::FindNearbyRequest {
            point: Some(geo_point(home)),
            category: alliance::Category::Dining as i32,
            service_tag: MEAL_TAG.into(),
            walk_minutes: MEAL_WALK_MINUTES,
            open_now: false,
            limit: CIRCLE_LIMIT,
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
        let candidates = found
            .merchants
            .into_iter()
            .map(candidate)
            .collect::<Result<Vec<_>, _>>()?;
        match choose(candidates, at) {
            Choice::Open(chosen) => Ok(MealMerchant {
                id: chosen.id,
                name: chosen.name,
                distance_metres: chosen.distance_metres,
            }),
            Choice::NoneNearby => Err(NoMeal::NoneNearby),
            Choice::NoneOpen => Err(NoMeal::NoneOpen),
        }
    }
}

/// A merchant of the answer as a candidate; a span of hours that does not
/// read is left out (the merchant is not known to be open by it).
fn candidate(nearby: alliance::NearbyMerchant) -> Result<Candidate, NoMeal> {
    let merchant = nearby.merchant.unwrap_or_default();
    let id = MerchantId::parse("merchant.id", &merchant.id)
        .map_err(|error| NoMeal::Unavailable(format!("the alliance answered {error}")))?;
    let hours = merchant
        .opening_hours
        .iter()
        .filter_map(|span| grpc::opening_hours("opening_hours", span).ok())
        .collect();
    Ok(Candidate {
        id,
        name: merchant.name,
        distance_metres: nearby.distance_metres,
        hours,
    })
}
