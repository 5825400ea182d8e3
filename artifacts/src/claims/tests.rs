use super::*;

const NOW: u64 = 1_800_000_000;

fn component() -> Vec<u8> {
    // A real (tiny) component: a component wrapping a core module.
    wat::parse_str("(component (core module (func (export \"f\"))))").unwrap()
}

fn new_claims() -> NewClaims {
    NewClaims {
        subject: nkeys::KeyPair::new_module().public_key(),
        name: Some("hello".into()),
        issued_at: NOW,
        expires: Some(NOW + 3600),
        not_before: None,
    }
}

fn trusting(issuer: &nkeys::KeyPair) -> TrustedIssuers {
    TrustedIssuers::new([issuer.public_key()]).unwrap()
}

#[test]
fn signed_components_verify_and_carry_their_claims() {
    let issuer = nkeys::KeyPair::new_account();
    let signed = sign(&component(), &new_claims(), &issuer).unwrap();
    let verdict = embedded(&signed);
    let claims = verdict.clone().unwrap().unwrap();
    assert_eq!(claims.issuer, issuer.public_key());
    assert_eq!(claims.name(), Some("hello"));
    assert_eq!(claims.revision, Some(CLAIMS_REVISION));
    assert_eq!(
        claims.hash().unwrap(),
        section::code_hash(&component()).unwrap()
    );
    assert_eq!(trusting(&issuer).admit(&verdict, NOW), Ok(()));
    // Signing again replaces the claims rather than adding a second section.
    let again = sign(&signed, &new_claims(), &issuer).unwrap();
    assert_eq!(
        section::strip(&again).unwrap(),
        section::strip(&signed).unwrap()
    );
}

#[test]
fn unsigned_components_run_only_where_no_issuer_is_trusted() {
    let verdict = embedded(&component());
    assert_eq!(verdict, Ok(None));
    assert_eq!(TrustedIssuers::default().admit(&verdict, NOW), Ok(()));
    let issuer = nkeys::KeyPair::new_account();
    assert_eq!(
        trusting(&issuer).admit(&verdict, NOW),
        Err(ClaimsError::Unsigned)
    );
}

#[test]
fn another_issuers_signature_is_not_trusted() {
    let trusted = nkeys::KeyPair::new_account();
    let stranger = nkeys::KeyPair::new_account();
    let signed = sign(&component(), &new_claims(), &stranger).unwrap();
    assert_eq!(
        trusting(&trusted).admit(&embedded(&signed), NOW),
        Err(ClaimsError::UntrustedIssuer {
            issuer: stranger.public_key()
        })
    );
}

#[test]
fn changed_code_is_a_hash_mismatch() {
    let issuer = nkeys::KeyPair::new_account();
    let signed = sign(&component(), &new_claims(), &issuer).unwrap();
    // Another component with the first one's claims section moved onto it.
    let token = section::find(&signed).unwrap().unwrap().to_owned();
    let other = wat::parse_str("(component (core module (func (export \"g\"))))").unwrap();
    let moved = section::with_custom_section(&other, CLAIMS_SECTION, token.as_bytes());
    assert!(matches!(
        embedded(&moved),
        Err(ClaimsError::HashMismatch { .. })
    ));
}

#[test]
fn a_forged_token_is_not_signed_by_its_issuer() {
    let issuer = nkeys::KeyPair::new_account();
    let forger = nkeys::KeyPair::new_account();
    // Claims naming the trusted issuer, signed by someone else.
    let code = component();
    let claims = Claims {
        expires: None,
        id: "x".into(),
        issued_at: NOW,
        issuer: issuer.public_key(),
        subject: nkeys::KeyPair::new_module().public_key(),
        not_before: None,
        metadata: Some(ComponentMetadata {
            hash: section::code_hash(&code).unwrap(),
            ..ComponentMetadata::default()
        }),
        revision: Some(CLAIMS_REVISION),
    };
    let token = jwt::encode(&claims, &forger).unwrap();
    let forged = section::with_custom_section(&code, CLAIMS_SECTION, token.as_bytes());
    assert!(matches!(
        trusting(&issuer).admit(&embedded(&forged), NOW),
        Err(ClaimsError::BadSignature { .. })
    ));
}

#[test]
fn dates_are_checked_as_wasmcloud_does() {
    let issuer = nkeys::KeyPair::new_account();
    let trust = trusting(&issuer);
    let mut new = new_claims();
    new.expires = Some(NOW - 1);
    let expired = embedded(&sign(&component(), &new, &issuer).unwrap());
    assert_eq!(
        trust.admit(&expired, NOW),
        Err(ClaimsError::Expired { at: NOW - 1 })
    );
    assert_eq!(trust.admit(&expired, NOW - 1), Ok(()));
    new.expires = None;
    new.not_before = Some(NOW + 60);
    let early = embedded(&sign(&component(), &new, &issuer).unwrap());
    assert_eq!(
        trust.admit(&early, NOW),
        Err(ClaimsError::NotYetValid { at: NOW + 60 })
    );
    assert_eq!(trust.admit(&early, NOW + 60), Ok(()));
}

#[test]
fn old_revisions_verify_only_when_their_hash_matches() {
    let issuer = nkeys::KeyPair::new_account();
    let code = component();
    let old_claims = |hash: String| Claims {
        expires: None,
        id: "old".into(),
        issued_at: NOW,
        issuer: issuer.public_key(),
        subject: nkeys::KeyPair::new_module().public_key(),
        not_before: None,
        metadata: Some(ComponentMetadata {
            hash,
            ..ComponentMetadata::default()
        }),
        revision: None,
    };
    let embed = |claims: &Claims| {
        let token = jwt::encode(claims, &issuer).unwrap();
        section::with_custom_section(&code, LEGACY_CLAIMS_SECTION, token.as_bytes())
    };
    let wrong = embed(&old_claims(
        "5C66140DB61ABE7000BAD7BBB7A1F896CE0C0A7879D8AA3C9CAB93DB0A0A1827".into(),
    ));
    assert!(matches!(
        embedded(&wrong),
        Err(ClaimsError::HashMismatch { .. })
    ));
    let right = old_claims(section::code_hash(&code).unwrap());
    assert_eq!(embedded(&embed(&right)), Ok(Some(right)));
}

#[test]
fn only_account_keys_issue_or_are_trusted() {
    let module = nkeys::KeyPair::new_module();
    assert!(matches!(
        sign(&component(), &new_claims(), &module),
        Err(ClaimsError::NotAnAccount { .. })
    ));
    assert!(TrustedIssuers::new([module.public_key()]).is_err());
    assert!(TrustedIssuers::new(["Anot-a-key"]).is_err());
    let account = nkeys::KeyPair::new_account().public_key();
    assert_eq!(
        TrustedIssuers::new([format!(" {account}")])
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [account.as_str()]
    );
}

#[test]
fn a_token_that_is_not_a_token_is_named() {
    let code = section::with_custom_section(&component(), CLAIMS_SECTION, b"nonsense");
    assert!(matches!(embedded(&code), Err(ClaimsError::Token { .. })));
}
