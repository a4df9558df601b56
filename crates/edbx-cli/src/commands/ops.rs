//! One command, one call: writes, reads, snapshots, schemas and tenant administration.

use edbx::{Aggregate, Event, VerifyOutcome, Written};
use serde_json::{Value, json};

use super::{Ctx, annotate};
use crate::cli::{Op, SchemaCommand, SnapshotCommand, TenantCommand, WriteArgs};
use crate::exit::{Exit, Failure, Outcome};
use crate::input;
use crate::output::Shape;

/// The JSON the server sent for a value.
pub fn raw(raw: Option<&edbx::RawJson>) -> Value {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null)
}

/// The aggregate as the server sent it (or rebuilt from its fields when nested in another
/// reply).
fn aggregate_json(a: &Aggregate) -> Value {
    if a.raw.is_some() {
        return raw(a.raw.as_ref());
    }
    let mut value = json!({
        "aggregate_type": a.aggregate_type,
        "aggregate_id": a.aggregate_id,
        "version": a.version,
        "state": a.state,
        "merkle_root": a.merkle_root,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "archived": a.archived,
    });
    if let Value::Object(map) = &mut value {
        map.extend(a.extensions.clone());
    }
    value
}

fn event_json(e: &Event) -> Value {
    raw(e.raw.as_ref())
}

/// A write's result: the echo, or `{"written": true}` when the server sends none.
fn written<T>(w: Written<T>, json_of: impl Fn(&T) -> Value) -> Value {
    match w.echo() {
        Some(echo) => json_of(echo),
        None => json!({"written": true, "echo": "the server runs with verbose_responses = false"}),
    }
}

fn metadata(write: &WriteArgs) -> Outcome<Option<Value>> {
    write
        .metadata
        .as_deref()
        .map(|m| input::json("metadata", m))
        .transpose()
}

fn not_found(what: &str, aggregate_type: &str, aggregate_id: &str) -> Failure {
    Failure::new(
        Exit::Server,
        format!("no {what} {aggregate_type}/{aggregate_id}"),
    )
    .hint(format!(
        "`edbx list --type {aggregate_type}` shows what exists"
    ))
}

/// What a command reads from its arguments, files or stdin: read and checked before
/// connecting, so a malformed payload is exit 2 whether or not a server answers.
#[derive(Default)]
struct Input {
    body: Value,
    metadata: Option<Value>,
}

impl Input {
    fn read(op: &Op) -> Outcome<Self> {
        let (name, text, write) = match op {
            Op::Create { payload, write, .. } | Op::Apply { payload, write, .. } => {
                ("payload", payload, Some(write))
            }
            Op::Patch { patch, write, .. } => ("patch", patch, Some(write)),
            Op::Schemas(SchemaCommand::Replace { schemas, .. }) => ("schemas", schemas, None),
            _ => return Ok(Self::default()),
        };
        Ok(Self {
            body: input::json(name, text)?,
            metadata: write.map(metadata).transpose()?.flatten(),
        })
    }
}

/// Runs a command that is one call to the server. Every command is handled here: the match is
/// exhaustive, so a new one does not compile until it is.
pub async fn run(op: &Op, ctx: &mut Ctx) -> Outcome<Exit> {
    let input = Input::read(op)?;
    let client = ctx.client().await?;
    let value = match op {
        Op::Create {
            aggregate_type,
            aggregate_id,
            event_type,
            payload: _,
            write,
        } => {
            let call = client.create(aggregate_type, aggregate_id, event_type, &input.body);
            let call = annotate(call, write.note.as_deref(), input.metadata.as_ref());
            written(call.await?, aggregate_json)
        }
        Op::Apply {
            aggregate_type,
            aggregate_id,
            event_type,
            payload: _,
            write,
            allow_unlistable,
        } => {
            let call = client
                .apply(aggregate_type, aggregate_id, event_type, &input.body)
                .allow_unlistable(*allow_unlistable);
            let call = annotate(call, write.note.as_deref(), input.metadata.as_ref());
            written(call.await?, event_json)
        }
        Op::Patch {
            aggregate_type,
            aggregate_id,
            event_type,
            patch: _,
            write,
        } => {
            let call = client.patch(aggregate_type, aggregate_id, event_type, &input.body);
            let call = annotate(call, write.note.as_deref(), input.metadata.as_ref());
            written(call.await?, event_json)
        }
        Op::Get {
            aggregate_type,
            aggregate_id,
        } => match client.get(aggregate_type, aggregate_id).await? {
            Some(aggregate) => aggregate_json(&aggregate),
            None => return Err(not_found("aggregate", aggregate_type, aggregate_id)),
        },
        Op::Resolve {
            aggregate_type,
            aggregate_id,
            depth,
        } => {
            let mut call = client.get(aggregate_type, aggregate_id);
            if let Some(depth) = depth {
                call = call.resolve_depth(*depth);
            }
            match call.resolved().await? {
                Some(resolved) => serde_json::to_value(ResolvedView::from(&resolved))
                    .map_err(|e| Failure::new(Exit::Internal, e.to_string()))?,
                None => return Err(not_found("aggregate", aggregate_type, aggregate_id)),
            }
        }
        Op::Select {
            aggregate_type,
            aggregate_id,
            fields,
        } => match client.select(aggregate_type, aggregate_id, fields).await? {
            Some(selection) => Value::Object(selection),
            None => return Err(not_found("aggregate", aggregate_type, aggregate_id)),
        },
        Op::Verify {
            aggregate_type,
            aggregate_id,
        } => {
            let check = client.verify(aggregate_type, aggregate_id).await?;
            let (outcome, exit) = match check.outcome {
                VerifyOutcome::Intact => ("intact", Exit::Ok),
                VerifyOutcome::Mismatch => ("mismatch", Exit::CheckFailed),
                _ => ("unverifiable", Exit::Unchecked),
            };
            let report = json!({
                "outcome": outcome,
                "intact": check.is_intact(),
                "unverifiable": check.unverifiable().map(|why| why.as_str()),
                "detail": check.detail,
                "version": check.version,
                "merkle_root": check.merkle_root,
                "recomputed_root": check.recomputed_root,
                "events": check.events,
                "first_bad_version": check.first_bad_version,
            });
            ctx.out.value(&report)?;
            match exit {
                Exit::Ok => {}
                Exit::CheckFailed => eprintln!(
                    "edbx: {aggregate_type}/{aggregate_id} does not match its Merkle root: {}",
                    check.detail
                ),
                _ => eprintln!(
                    "edbx: {aggregate_type}/{aggregate_id} could not be checked: {}",
                    check.detail
                ),
            }
            return Ok(exit);
        }
        Op::Archive {
            aggregate_type,
            aggregate_id,
            comment,
        } => {
            let mut call = client.archive(aggregate_type, aggregate_id);
            if let Some(comment) = comment {
                call = call.comment(comment.as_str());
            }
            written(call.await?, aggregate_json)
        }
        Op::Restore {
            aggregate_type,
            aggregate_id,
        } => written(
            client.restore(aggregate_type, aggregate_id).await?,
            aggregate_json,
        ),
        Op::Referrers {
            aggregate_type,
            aggregate_id,
        } => {
            let referrers = client.referrers(aggregate_type, aggregate_id).await?;
            ctx.out.begin(Shape::Referrers);
            for r in referrers {
                ctx.out.row(&json!({
                    "aggregate_type": r.aggregate_type,
                    "aggregate_id": r.aggregate_id,
                    "path": r.path,
                }))?;
            }
            ctx.out.end()?;
            return Ok(Exit::Ok);
        }
        Op::Snapshots(snapshot) => match snapshot {
            SnapshotCommand::Create {
                aggregate_type,
                aggregate_id,
                comment,
            } => {
                let mut call = client.create_snapshot(aggregate_type, aggregate_id);
                if let Some(comment) = comment {
                    call = call.comment(comment.as_str());
                }
                raw(call.await?.raw.as_ref())
            }
            SnapshotCommand::List {
                aggregate_type,
                aggregate_id,
                version,
            } => {
                let mut call = client.list_snapshots();
                match (aggregate_type, aggregate_id) {
                    (Some(t), Some(id)) => call = call.aggregate(t.as_str(), id.as_str()),
                    (Some(t), None) => call = call.aggregate_type(t.as_str()),
                    _ => {}
                }
                if let Some(version) = version {
                    call = call.version(*version);
                }
                let snapshots = call.await?;
                ctx.out.begin(Shape::Snapshots);
                for s in &snapshots {
                    ctx.out.row(&raw(s.raw.as_ref()))?;
                }
                ctx.out.end()?;
                return Ok(Exit::Ok);
            }
            SnapshotCommand::Get { snapshot_id } => {
                match client.get_snapshot(*snapshot_id).await? {
                    Some(snapshot) => raw(snapshot.raw.as_ref()),
                    None => {
                        return Err(Failure::new(
                            Exit::Server,
                            format!("no snapshot {snapshot_id}"),
                        )
                        .hint("`edbx snapshots list` shows them"));
                    }
                }
            }
        },
        Op::Schemas(schemas) => match schemas {
            SchemaCommand::List => Value::Object(client.list_schemas().await?),
            SchemaCommand::Replace {
                schemas: _,
                confirm,
            } => {
                let schemas = &input.body;
                if !confirm.yes {
                    let current = client.list_schemas().await?;
                    let new_types: Vec<&str> = schemas
                        .as_object()
                        .map(|m| m.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let removed: Vec<&str> = current
                        .keys()
                        .map(String::as_str)
                        .filter(|t| !new_types.contains(t))
                        .collect();
                    let what = if new_types.is_empty() {
                        format!("remove every schema of the tenant ({} now)", current.len())
                    } else if removed.is_empty() {
                        format!(
                            "replace the tenant's schemas with {} ({})",
                            new_types.len(),
                            new_types.join(", ")
                        )
                    } else {
                        format!(
                            "replace the tenant's schemas with {} ({}), removing {}",
                            new_types.len(),
                            new_types.join(", "),
                            removed.join(", ")
                        )
                    };
                    confirmed("schemas replace", &what)?;
                }
                json!({"replaced": client.replace_schemas(schemas).await?})
            }
        },
        Op::Tenant(tenant) => match tenant {
            TenantCommand::Assign {
                tenant_id,
                shard_id,
            } => {
                let r = client.tenant_assign(tenant_id, shard_id).await?;
                json!({"changed": r.changed, "shard_id": r.shard_id})
            }
            TenantCommand::Unassign { tenant_id, confirm } => {
                if !confirm.yes {
                    confirmed(
                        "tenant unassign",
                        &format!("remove tenant {tenant_id}'s shard assignment"),
                    )?;
                }
                json!({"changed": client.tenant_unassign(tenant_id).await?})
            }
            TenantCommand::QuotaSet {
                tenant_id,
                max_storage_mb,
            } => {
                let r = client.tenant_quota_set(tenant_id, *max_storage_mb).await?;
                json!({"changed": r.changed, "quota_mb": r.quota_mb})
            }
            TenantCommand::QuotaClear { tenant_id, confirm } => {
                if !confirm.yes {
                    confirmed(
                        "tenant quota-clear",
                        &format!("remove tenant {tenant_id}'s storage quota"),
                    )?;
                }
                json!({"changed": client.tenant_quota_clear(tenant_id).await?})
            }
            TenantCommand::QuotaRecalc { tenant_id } => {
                json!({"storage_bytes": client.tenant_quota_recalc(tenant_id).await?})
            }
            TenantCommand::Reload { tenant_id } => {
                json!({"reloaded": client.tenant_reload(tenant_id).await?})
            }
            TenantCommand::Publish {
                tenant_id,
                reason,
                actor,
                labels,
                activate,
                force,
                reload,
            } => {
                let mut call = client
                    .tenant_schema_publish(tenant_id)
                    .activate(*activate)
                    .force(*force)
                    .reload(*reload);
                if let Some(reason) = reason {
                    call = call.reason(reason.as_str());
                }
                if let Some(actor) = actor {
                    call = call.actor(actor.as_str());
                }
                for label in labels {
                    call = call.label(label.as_str());
                }
                let r = call.await?;
                json!({"version_id": r.version_id, "activated": r.activated, "skipped": r.skipped})
            }
        },
    };
    ctx.out.value(&value)?;
    Ok(Exit::Ok)
}

/// Asks before a command that removes something: on a terminal, "`what`? [y/N]"; elsewhere
/// (a script, a pipe) it fails, nothing sent, unless `--yes` was given.
fn confirmed(command: &str, what: &str) -> Outcome {
    use std::io::{BufRead, IsTerminal, Write};
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Failure::usage(format!(
            "`{command}` would {what}: confirm with --yes (nothing was sent)"
        ))
        .hint(format!("`edbx {command} … --yes` does it without asking")));
    }
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "edbx: {what}? [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(
            Failure::usage(format!("`{command}` not confirmed: nothing was sent"))
                .hint("answer y to go ahead, or pass --yes"),
        ),
    }
}

/// A resolved aggregate as JSON (the model keeps the parts typed).
#[derive(serde::Serialize)]
struct ResolvedView {
    domain: String,
    aggregate: Value,
    references: Vec<Value>,
}

impl From<&edbx::Resolved> for ResolvedView {
    fn from(r: &edbx::Resolved) -> Self {
        Self {
            domain: r.domain.clone(),
            aggregate: aggregate_json(&r.aggregate),
            references: r
                .references
                .iter()
                .map(|reference| {
                    json!({
                        "path": reference.path,
                        "reference": reference.reference,
                        "status": reference.status,
                        "resolved": reference.resolved.as_ref().map(|r| serde_json::to_value(ResolvedView::from(r.as_ref())).unwrap_or(Value::Null)),
                    })
                })
                .collect(),
        }
    }
}
