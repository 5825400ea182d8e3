//! Signed host reports: heartbeats and host events, signed by the host's own key.
//!
//! ```text
//! lattice-sig N… <signature>
//! lattice-report/1
//! lattice default
//! host N…                    (the signer: a host's id is its public key)
//! issued_ms 1763780000000
//! join V… <proof>            (only when the host holds a join token)
//!
//! {"v":1,"kind":"host_heartbeat",...}
//! ```

use super::admission::{Admission, Admitted, JoinToken};
use super::command::{check_field, SignError};
use super::frame::{self, Fields, FrameError};
use super::keys::{self, KeyError};
use super::ReportRefusal;
use nkeys::{KeyPair, KeyPairType};

/// The kind line of a report envelope (protocol version 1).
pub const REPORT_KIND: &str = "lattice-report/1";

/// Sign a report (the [`Event`](crate::messages::Event) JSON) with the host's key;
/// `join` adds a proof of the host's join token. The bytes to publish.
///
/// ```
/// use lattice_protocol::trust::{new_host_key, sign_report, Admission, Admitted, JoinToken, ReportPolicy};
///
/// let token = JoinToken::generate();
/// let host = new_host_key();
/// let bytes = sign_report(&host, "default", 5_000, br#"{"v":1}"#, Some(&token)).unwrap();
///
/// // On the controller, which was given the token's public key:
/// let admission = Admission::default().with_join_key(&token.public_key()).unwrap();
/// let policy = ReportPolicy::new("default", admission);
/// let report = policy.check(&bytes, 5_100).unwrap();
/// assert_eq!(report.host, host.public_key());
/// assert!(matches!(report.admitted, Admitted::JoinToken { .. }));
/// // Reports of hosts without the token are refused.
/// let stranger = sign_report(&new_host_key(), "default", 5_000, b"{}", None).unwrap();
/// assert!(policy.check(&stranger, 5_100).is_err());
/// ```
pub fn sign_report(
    host_key: &KeyPair,
    lattice: &str,
    issued_ms: u64,
    body: &[u8],
    join: Option<&JoinToken>,
) -> Result<Vec<u8>, SignError> {
    keys::check_signer(host_key, KeyPairType::Server, keys::HOST_KEY)
        .map_err(|source| SignError::Key { source })?;
    let valid = crate::subjects::valid_lattice_name(lattice);
    check_field(
        "lattice",
        lattice,
        valid,
        "1 to 64 of A-Z, a-z, 0-9, '_' and '-'",
    )?;
    let host = host_key.public_key();
    let mut head =
        format!("{REPORT_KIND}\nlattice {lattice}\nhost {host}\nissued_ms {issued_ms}\n");
    if let Some(token) = join {
        let proof = token.proof(lattice, &host);
        head.push_str(&format!("join {} {proof}\n", token.public_key()));
    }
    head.push('\n');
    let mut signed = head.into_bytes();
    signed.extend_from_slice(body);
    let signature = host_key.sign(&signed).map_err(|e| SignError::Key {
        source: KeyError {
            key: host.clone(),
            expected: keys::HOST_KEY,
            problem: e.to_string(),
        },
    })?;
    Ok(frame::write(&host, &signature, &signed))
}

/// A report as received, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    lattice: String,
    host: String,
    issued_ms: u64,
    join: Option<(String, String)>,
    body: Vec<u8>,
    signer: String,
    signature: [u8; 64],
    signed: Vec<u8>,
}

impl SignedReport {
    /// Read a report's bytes; an unsigned one is [`ReportRefusal::Unsigned`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ReportRefusal> {
        let frame = frame::read(bytes).map_err(refusal)?;
        let mut f = Fields::open(frame.signed, REPORT_KIND).map_err(refusal)?;
        let lattice = f.field("lattice").map_err(refusal)?.to_owned();
        let host = f.field("host").map_err(refusal)?.to_owned();
        let issued_ms = f.number("issued_ms").map_err(refusal)?;
        let join = match f.optional("join").map_err(refusal)? {
            Some(text) => {
                let (key, proof) =
                    text.split_once(' ')
                        .ok_or_else(|| ReportRefusal::Malformed {
                            problem: "`join` needs the token's public key and the proof".into(),
                        })?;
                Some((key.to_owned(), proof.to_owned()))
            }
            None => None,
        };
        let body = f.body().map_err(refusal)?.to_vec();
        Ok(SignedReport {
            lattice,
            host,
            issued_ms,
            join,
            body,
            signer: frame.signer.to_owned(),
            signature: frame.signature,
            signed: frame.signed.to_vec(),
        })
    }

    /// The host it claims to come from (for logs; not yet verified).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Its content (an [`Event`](crate::messages::Event)'s JSON), not verified.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// The event in `bytes` as an observer reads it: a host's signed report or a
/// controller's plain event, **without checking the signature**. For tools and
/// tests that only show events; a controller checks reports with a
/// [`ReportPolicy`] before it acts on them.
pub fn read_event_unverified(bytes: &[u8]) -> Result<crate::messages::Event, String> {
    match SignedReport::decode(bytes) {
        Ok(report) => crate::decode(report.body()).map_err(|e| e.to_string()),
        Err(ReportRefusal::Unsigned) => crate::decode(bytes).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn refusal(e: FrameError) -> ReportRefusal {
    match e {
        FrameError::Unsigned => ReportRefusal::Unsigned,
        FrameError::Malformed(problem) => ReportRefusal::Malformed { problem },
    }
}

/// A report that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReport {
    /// The host's id (the key that signed).
    pub host: String,
    /// When the host issued it.
    pub issued_ms: u64,
    /// How the host was admitted.
    pub admitted: Admitted,
    /// The report's bytes (an [`Event`](crate::messages::Event) to [`decode`](crate::decode));
    /// its `host_id` must equal [`VerifiedReport::host`].
    pub body: Vec<u8>,
    /// The host's signature: Ed25519 is deterministic, so a report published
    /// again carries the same one (how a controller tells a replay).
    pub signature: [u8; 64],
}

/// What a controller accepts as a host report. See [`sign_report`] for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPolicy {
    /// This controller's lattice.
    pub lattice: String,
    /// Refuse reports issued longer ago than this (default 30 s).
    pub max_age_ms: u64,
    /// Accept reports issued up to this far in the future (default 5 s).
    pub max_skew_ms: u64,
    /// Which hosts are admitted.
    pub admission: Admission,
}

impl ReportPolicy {
    /// A policy with the default age and skew.
    pub fn new(lattice: &str, admission: Admission) -> Self {
        Self {
            lattice: lattice.to_owned(),
            max_age_ms: 30_000,
            max_skew_ms: 5_000,
            admission,
        }
    }

    /// Decode and check a report: signed by the host it names, for this lattice,
    /// fresh, and admitted.
    pub fn check(&self, bytes: &[u8], now_ms: u64) -> Result<VerifiedReport, ReportRefusal> {
        let r = SignedReport::decode(bytes)?;
        if r.signer != r.host || keys::check_host_key(&r.signer).is_err() {
            return Err(ReportRefusal::NotTheHostsKey {
                host: r.host,
                key: r.signer,
            });
        }
        let signed_ok = KeyPair::from_public_key(&r.signer)
            .and_then(|k| k.verify(&r.signed, &r.signature))
            .is_ok();
        if !signed_ok {
            return Err(ReportRefusal::BadSignature { host: r.host });
        }
        if r.lattice != self.lattice {
            let expected = self.lattice.clone();
            return Err(ReportRefusal::WrongLattice {
                host: r.host,
                expected,
                found: r.lattice,
            });
        }
        let ahead_ms = r.issued_ms.saturating_sub(now_ms);
        if ahead_ms > self.max_skew_ms {
            let max_skew_ms = self.max_skew_ms;
            return Err(ReportRefusal::FromFuture {
                host: r.host,
                ahead_ms,
                max_skew_ms,
            });
        }
        if now_ms.saturating_sub(r.issued_ms) > self.max_age_ms {
            let (issued_ms, max_age_ms) = (r.issued_ms, self.max_age_ms);
            return Err(ReportRefusal::TooOld {
                host: r.host,
                issued_ms,
                now_ms,
                max_age_ms,
            });
        }
        let join = r.join.as_ref().map(|(k, p)| (k.as_str(), p.as_str()));
        let admitted = match self.admission.decide(&self.lattice, &r.host, join) {
            Ok(admitted) => admitted,
            Err(Some(token)) => {
                return Err(ReportRefusal::BadJoinProof {
                    host: r.host,
                    token,
                })
            }
            Err(None) => return Err(ReportRefusal::NotAdmitted { host: r.host }),
        };
        Ok(VerifiedReport {
            host: r.host,
            issued_ms: r.issued_ms,
            admitted,
            body: r.body,
            signature: r.signature,
        })
    }
}
