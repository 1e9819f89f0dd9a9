//! Idempotency keys (`request_id`) and the request each one was first used
//! with. Same key, same request: the first answer. Same key, a different
//! request (another RPC, or the same RPC with another body): refused, naming
//! `request_id`. The convention of the best-known idempotency APIs.
//!
//! A [`RequestKey`] carries the key and a digest of the request (its RPC and
//! its protobuf encoding); a store keeps the digest beside the key and checks
//! it with [`RequestKey::same_request`] when it finds the key taken.

use sha2::{Digest, Sha256};

use crate::fields::{self, FieldError};

/// An idempotency key and the digest of the request that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    id: String,
    digest: String,
}

impl RequestKey {
    /// The key in `request_id` of a `method` request, `None` when blank.
    /// `message` is the whole request as it came in.
    pub fn optional<M: prost::Message>(
        method: &str,
        request_id: &str,
        message: &M,
    ) -> Result<Option<Self>, FieldError> {
        let Some(id) = fields::optional("request_id", request_id, fields::REQUEST_ID)? else {
            return Ok(None);
        };
        let mut hash = Sha256::new();
        hash.update(method.as_bytes());
        hash.update([0]);
        hash.update(message.encode_to_vec());
        let digest = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(Self { id, digest }))
    }

    /// The key in `request_id`, which is required.
    pub fn required<M: prost::Message>(
        method: &str,
        request_id: &str,
        message: &M,
    ) -> Result<Self, FieldError> {
        Self::optional(method, request_id, message)?
            .ok_or_else(|| FieldError::new("request_id", "must not be empty"))
    }

    /// A key a service makes itself (its own retries); its digest is the key.
    pub fn internal(id: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            digest: id.clone(),
            id,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The digest to store beside the key.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether the key's first use, stored with `stored` (none for a key kept
    /// before digests were), was this same request.
    pub fn same_request(&self, stored: Option<&str>) -> Result<(), FieldError> {
        match stored {
            Some(stored) if stored != self.digest => Err(FieldError::new(
                "request_id",
                format!(
                    "{:?} was already used for a different request; use a new key for a new request",
                    self.id
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Ask {
        #[prost(string, tag = "1")]
        request_id: String,
        #[prost(string, tag = "2")]
        text: String,
    }

    fn key(method: &str, text: &str) -> RequestKey {
        let ask = Ask {
            request_id: "r-1".into(),
            text: text.into(),
        };
        RequestKey::required(method, &ask.request_id, &ask).unwrap()
    }

    #[test]
    fn the_same_request_again_is_the_same_request() {
        let first = key("/s/Accept", "a");
        assert_eq!(
            key("/s/Accept", "a").same_request(Some(first.digest())),
            Ok(())
        );
    }

    #[test]
    fn another_method_or_body_with_the_key_is_refused_naming_request_id() {
        let first = key("/s/Accept", "a");
        for other in [key("/s/Start", "a"), key("/s/Accept", "b")] {
            let error = other.same_request(Some(first.digest())).unwrap_err();
            assert_eq!(error.field, "request_id");
        }
    }

    #[test]
    fn a_key_stored_without_a_digest_is_taken_as_the_same_request() {
        assert_eq!(key("/s/Accept", "a").same_request(None), Ok(()));
    }

    #[test]
    fn a_blank_key_is_none() {
        let ask = Ask::default();
        assert_eq!(RequestKey::optional("/s/A", " ", &ask), Ok(None));
    }
}
