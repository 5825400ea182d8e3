//! The host's NATS side: answers commands and pings, publishes heartbeats and
//! events, and drains on shutdown.
//!
//! Three tasks share the [`Host`] handle: commands (one at a time, in order),
//! pings, and the heartbeat ticker, so a slow compilation never delays a beat.
//! They talk to NATS through the [`Bus`] seam, so they are unit-tested on the
//! in-memory fake (below) and integration-tested on a real server.
//!
//! Architecture invariant: a command is obeyed only if a [`CommandVerifier`]
//! accepts it (signed by a trusted lattice key, for this lattice and host, fresh,
//! not replayed, not from a stale lease term); everything the host reports is
//! signed with its own key. With a state dir, the verifier's fence is restored
//! at start and saved before each command is obeyed ([`crate::fence`]).

use crate::host::{now_ms, Host};
use futures::StreamExt;
use lattice_bus::{Bus, Connection, SharedBus};
use lattice_protocol::messages::{CommandReply, Event, HostCommand};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::trust::CommandVerifier;
use lattice_protocol::{decode, encode};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Join the lattice and serve until `shutdown` resolves, then drain: stop taking
/// work, remove every workload and tell the lattice the host is leaving.
pub async fn run(
    host: Host,
    client: async_nats::Client,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let connection = lattice_bus::watch_connection(client.clone());
    serve_with(host, Arc::new(client), Some(connection), shutdown).await
}

/// [`run`] on any [`Bus`].
pub async fn serve(
    host: Host,
    client: SharedBus,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_with(host, client, None, shutdown).await
}

/// [`serve`], beating at once after every reconnect `connection` shows (async-nats
/// subscribes again by itself; the beat re-announces the host to the controllers).
pub async fn serve_with(
    host: Host,
    client: SharedBus,
    connection: Option<watch::Receiver<Connection>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let subjects = Subjects::new(&host.config().lattice);
    let config = host.config();
    let mut verifier =
        CommandVerifier::new(&config.lattice, host.id(), &config.trust, config.commands)
            .map_err(|e| anyhow::anyhow!("cannot trust that key: {e}"))?;
    let fence = match &config.state_dir {
        Some(dir) => {
            let file = crate::fence::FenceFile::new(dir, &config.lattice, host.id());
            verifier.restore(file.load()?);
            // Written once at start, so a state dir the host cannot write stops it
            // here rather than at its first command.
            file.store(verifier.fence())?;
            tracing::info!(
                path = %file.path().display(),
                highest_term = verifier.fence().highest_term,
                "command fence restored"
            );
            Some(file)
        }
        None => None,
    };
    if config.trust.is_empty() {
        tracing::warn!("this host trusts no lattice key (--trust), so it will obey no command");
    }
    // Named config, kept current for `wasi:config` (stopped when serving ends).
    let named_configs = host
        .nats()
        .map(|nats| host.named_configs().watch(nats, subjects.config_bucket()));
    // Guests' log lines on NATS (stopped when serving ends).
    let guest_logs = host.nats().and_then(|nats| {
        host.guest_logs()
            .publish(nats.clone(), &host.config().lattice, host.id())
    });
    let mut commands = client.subscribe(subjects.host_command(host.id())).await?;
    let mut pings = client.subscribe(subjects.hosts_ping()).await?;
    publish(
        &host,
        &*client,
        &subjects,
        &Event::HostStarted {
            host_id: host.id().to_string(),
            labels: host.info().labels,
        },
    )
    .await;
    tracing::info!(host_id = %host.id(), lattice = %host.config().lattice, "host joined the lattice");

    let beat = {
        let (host, client, subjects) = (host.clone(), client.clone(), subjects.clone());
        let mut connection = connection;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(host.config().heartbeat_interval);
            let mut since = connection.as_mut().map(|c| *c.borrow_and_update());
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = reconnected(&mut connection, &mut since) => {
                        tracing::info!("reconnected to NATS: announcing this host at once");
                    }
                }
                heartbeat(&host, &*client, &subjects).await;
            }
        })
    };
    let ping = {
        let (host, client) = (host.clone(), client.clone());
        tokio::spawn(async move {
            while let Some(msg) = pings.next().await {
                if let Some(reply) = msg.reply {
                    let _ = client
                        .publish(reply, None, encode(&host.info()).into())
                        .await;
                }
            }
        })
    };
    let serve = async {
        while let Some(msg) = commands.next().await {
            let verified = verifier.verify_bytes(&msg.payload, now_ms());
            // The fence reaches the disk before the command is obeyed: a crash in
            // between must not forget a term the host acted on, so a command whose
            // fence cannot be kept is not obeyed.
            let kept = match (&verified, &fence) {
                (Ok(_), Some(file)) => file.store(verifier.fence()).map_err(|e| {
                    tracing::error!("{e}; refusing the command");
                    e
                }),
                _ => Ok(()),
            };
            let reply = match (verified, kept) {
                (Ok(_), Err(e)) => CommandReply::error(format!(
                    "host {} cannot keep its command fence on disk, so it obeys no command: {e}",
                    host.id()
                )),
                (Ok(command), Ok(())) => {
                    handle_command(&host, &*client, &subjects, &command.body).await
                }
                (Err(refusal), _) => {
                    host.count_refused_command();
                    tracing::warn!(kind = refusal.kind(), "command refused: {refusal}");
                    CommandReply::error(format!(
                        "host {} refused the command: {refusal}",
                        host.id()
                    ))
                }
            };
            if let Some(to) = msg.reply {
                let _ = client.publish(to, None, encode(&reply).into()).await;
            }
            heartbeat(&host, &*client, &subjects).await;
        }
    };
    tokio::select! {
        () = serve => tracing::warn!("command subscription ended"),
        () = shutdown => {}
    }
    // Drain: say so at once (the controller re-places the work), let in-flight
    // invocations finish, then leave.
    host.set_draining();
    beat.abort();
    heartbeat(&host, &*client, &subjects).await;
    let left = host.drain(host.config().drain_timeout).await;
    if left > 0 {
        tracing::warn!(
            left,
            "drain deadline passed with invocations still running; stopping them"
        );
    }
    ping.abort();
    if let Some(watch) = named_configs {
        watch.abort();
    }
    if let Some(logs) = guest_logs {
        logs.abort();
    }
    publish(
        &host,
        &*client,
        &subjects,
        &Event::HostStopped {
            host_id: host.id().to_string(),
        },
    )
    .await;
    // Deadline on the flush so an unreachable server cannot hold up shutdown.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    tracing::info!(host_id = %host.id(), "host left the lattice");
    Ok(())
}

async fn handle_command(
    host: &Host,
    client: &dyn Bus,
    subjects: &Subjects,
    payload: &[u8],
) -> CommandReply {
    let command = match decode::<HostCommand>(payload) {
        Ok(c) => c,
        Err(e) => {
            return CommandReply::error(format!("host {} cannot read the command: {e}", host.id()))
        }
    };
    let host_id = host.id().to_string();
    match command {
        HostCommand::Apply { workload } => {
            let app = workload.manifest.name.clone();
            let version = workload.manifest.version.clone();
            match host.apply(workload).await {
                Ok(changes) => {
                    for (component, instances) in changes {
                        let event = Event::ComponentScaled {
                            host_id: host_id.clone(),
                            app: app.clone(),
                            version: version.clone(),
                            component,
                            instances,
                        };
                        publish(host, client, subjects, &event).await;
                    }
                    publish(
                        host,
                        client,
                        subjects,
                        &Event::WorkloadApplied {
                            host_id,
                            app,
                            version,
                        },
                    )
                    .await;
                    CommandReply::ok()
                }
                Err(error) => {
                    let error = error.to_string();
                    tracing::warn!(%app, %error, "workload refused");
                    publish(
                        host,
                        client,
                        subjects,
                        &Event::WorkloadFailed {
                            host_id,
                            app,
                            error: error.clone(),
                        },
                    )
                    .await;
                    CommandReply::error(error)
                }
            }
        }
        HostCommand::Remove { app } => {
            let version = host
                .info()
                .workloads
                .into_iter()
                .find(|w| w.app == app)
                .map(|w| w.version);
            let stopped = host.instances(&app);
            if host.remove(&app) {
                for component in stopped.into_keys() {
                    let event = Event::ComponentScaled {
                        host_id: host_id.clone(),
                        app: app.clone(),
                        version: version.clone().unwrap_or_default(),
                        component,
                        instances: 0,
                    };
                    publish(host, client, subjects, &event).await;
                }
                publish(
                    host,
                    client,
                    subjects,
                    &Event::WorkloadRemoved { host_id, app },
                )
                .await;
            }
            CommandReply::ok()
        }
        HostCommand::SetLabels { set, unset } => match host.set_labels(set, &unset) {
            Ok(()) => {
                tracing::info!(labels = ?host.labels(), "labels changed");
                // Link targets serve the locality subjects of the new labels.
                if let Err(e) = host.refresh_locality().await {
                    tracing::warn!("cannot re-subscribe link targets for the new labels: {e}");
                }
                CommandReply::ok()
            }
            Err(e) => CommandReply::error(e),
        },
    }
}

/// Resolve at the next reconnect after `since` (never without a connection watch).
async fn reconnected(
    connection: &mut Option<watch::Receiver<Connection>>,
    since: &mut Option<Connection>,
) {
    let (Some(rx), Some(seen)) = (connection.as_mut(), since.as_mut()) else {
        return std::future::pending().await;
    };
    loop {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = *rx.borrow_and_update();
        if now.reconnected_since(seen) {
            *seen = now;
            return;
        }
        if now.connected {
            *seen = now;
        }
    }
}

async fn heartbeat(host: &Host, client: &dyn Bus, subjects: &Subjects) {
    publish(host, client, subjects, &Event::HostHeartbeat(host.info())).await;
}

/// Publish `event` signed with the host's key.
async fn publish(host: &Host, client: &dyn Bus, subjects: &Subjects, event: &Event) {
    let signed = match host.sign_report(&encode(event)) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, kind = event.kind(), "could not sign event");
            return;
        }
    };
    if let Err(e) = client
        .publish(subjects.event(event.kind()), None, signed.into())
        .await
    {
        tracing::warn!(error = %e, kind = event.kind(), "could not publish event");
    }
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
