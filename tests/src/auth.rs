//! Services checking bearer tokens, as they run in production: a token file
//! naming each caller's account and role, and requests carrying a token.

use std::path::{Path, PathBuf};

use shequ_chassis::auth::token_hash;
use tonic::metadata::MetadataValue;

/// Writes the token file `SHEQU_AUTH_TOKENS_FILE` names into `dir`: one
/// `(account name, role, token)` per caller.
pub fn token_file(dir: &Path, callers: &[(&str, &str, &str)]) -> anyhow::Result<PathBuf> {
    let tokens: Vec<serde_json::Value> = callers
        .iter()
        .map(|(name, role, token)| {
            serde_json::json!({"name": name, "role": role, "sha256": token_hash(token)})
        })
        .collect();
    let path = dir.join("tokens.json");
    std::fs::write(&path, serde_json::json!({ "tokens": tokens }).to_string())?;
    Ok(path)
}

/// `message` as a request carrying `authorization: <scheme> <token>`.
pub fn with_token<T>(message: T, scheme: &str, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("{scheme} {token}").parse()?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}
