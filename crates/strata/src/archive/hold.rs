//! `strata archive hold`.

use strata_api::HoldBody;

use super::{ArchiveClient, HoldArgs};
use crate::Result;

pub(super) async fn run(client: &ArchiveClient, args: &HoldArgs) -> Result<()> {
    let on = if args.on { "true" } else { "false" };
    let answer: HoldBody = client
        .json(
            true,
            "v1/archive/legal-hold",
            &[
                ("tenant", args.tenant.as_str()),
                ("stream", args.stream.as_str()),
                ("date", args.date.as_str()),
                ("on", on),
            ],
        )
        .await?;
    println!(
        "legal hold {} for {}/{}/{}: {} objects",
        if args.on { "placed" } else { "lifted" },
        args.tenant,
        args.stream,
        args.date,
        answer.objects
    );
    Ok(())
}
