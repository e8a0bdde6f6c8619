//! Looking one event up, shared by REST and gRPC so both validate identically.

use strata_tiering::Store;
use strata_types::{StoredEvent, validate::check_name};

use crate::error::{ApiError, ErrorKind};

/// The stored event with this tenant and id, or `not_found`. An event of another tenant is
/// not found, exactly like one that does not exist.
pub(crate) async fn get_event(
    store: &Store,
    tenant: &str,
    id: &str,
) -> Result<StoredEvent, ApiError> {
    check_name("tenant", tenant)?;
    let max_id = store.limits().max_id_bytes;
    if id.is_empty() {
        return Err(ApiError::missing("id"));
    }
    if id.len() > max_id {
        return Err(ApiError::invalid(
            "id",
            format!(
                "is {} bytes; the limit is {max_id} (max_id_bytes)",
                id.len()
            ),
        ));
    }
    store.get_event(tenant, id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            format!("no event with id `{id}` for tenant `{tenant}`"),
        )
        .with_field("id")
    })
}
