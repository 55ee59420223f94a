//! KeyCustody: a key pair whose secret never leaves the contract.
//!
//! The secret is derived on demand with pink's `derive_sr25519_key(salt)` — a function of
//! the cluster key, this contract's address and the salt, identical on every worker of the
//! cluster and unknowable outside it — used for one call and dropped. Storage holds only
//! the owner; no message returns anything but public keys, signatures and booleans (the SDK's
//! `Sr25519Secret` is not even `Encode`).
//!
//! - sr25519: salt `key_custody/sr25519`, the full 64-byte secret;
//! - secp256k1: salt `key_custody/ecdsa`, its first 32 bytes (a separate salt, so the two
//!   curves never share a scalar).
//!
//! Storage: root struct `KeyCustody { owner: AccountId }` at `00 00 00 00`.

#![no_std]
#![no_main]

use phat_sdk::ink::{self, OrCouldNotRead, Selector};
use phat_sdk::pink::{self, SigType, Sr25519Secret};
use phat_sdk::scale::{Bytes, Encode, Reader, Writer};
use phat_sdk::{env, AccountId};

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const OWNER: Selector = [0xfe, 0xae, 0xa4, 0xfa];
const PUBLIC_KEY: Selector = [0x52, 0x06, 0x1d, 0x7d];
const ECDSA_PUBLIC_KEY: Selector = [0x31, 0x98, 0x20, 0xe0];
const SIGN: Selector = [0x81, 0xca, 0x8f, 0xa1];
const VERIFY: Selector = [0x18, 0x60, 0xff, 0x3b];

const SR25519_SALT: &[u8] = b"key_custody/sr25519";
const ECDSA_SALT: &[u8] = b"key_custody/ecdsa";
/// schnorrkel signatures are 64 bytes; pink fails the whole call on any other length.
const SR25519_SIGNATURE_LEN: usize = 64;

/// `key_custody::key_custody::Error` (SCALE: the variant index).
#[derive(Clone, Copy)]
enum Error {
    NotOwner = 0,
    QueryOnly = 1,
}

impl Encode for Error {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&(*self as u8));
    }
}

fn load_owner() -> AccountId {
    let mut buf = [0u8; 32];
    match Reader::new(ink::load_root(&mut buf)).read::<AccountId>() {
        Some(owner) => owner,
        None => env::trap_with("could not properly decode storage entry"),
    }
}

fn sr25519_key() -> Sr25519Secret {
    pink::derive_sr25519_key(SR25519_SALT)
}

fn public_key() -> [u8; 32] {
    pink::sr25519_public_key(&sr25519_key())
}

fn sign(owner: &AccountId, message: &[u8]) -> Result<&'static [u8], Error> {
    if env::caller() != *owner {
        return Err(Error::NotOwner);
    }
    // In a transaction pink would hand back an empty signature; refuse clearly instead.
    if pink::is_in_transaction() {
        return Err(Error::QueryOnly);
    }
    Ok(pink::sign(SigType::Sr25519, sr25519_key().as_bytes(), message))
}

fn verify(message: &[u8], signature: &[u8]) -> bool {
    signature.len() == SR25519_SIGNATURE_LEN
        && pink::verify(SigType::Sr25519, &public_key(), message, signature)
}

// --- entry points --------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, _) = ink::split_selector(env::input()).or_could_not_read();
    if selector != NEW {
        ink::could_not_read_input();
    }
    ink::store_root(&env::caller());
    ink::return_constructor_ok()
}

/// A decoded call; byte strings borrow the call input.
enum Message {
    Owner,
    PublicKey,
    EcdsaPublicKey,
    Sign(&'static [u8]),
    Verify(&'static [u8], &'static [u8]),
}

fn decode(selector: Selector, args: &mut Reader<'static>) -> Option<Message> {
    Some(match selector {
        OWNER => Message::Owner,
        PUBLIC_KEY => Message::PublicKey,
        ECDSA_PUBLIC_KEY => Message::EcdsaPublicKey,
        SIGN => Message::Sign(args.read()?),
        VERIFY => Message::Verify(args.read()?, args.read()?),
        _ => return None,
    })
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    let owner = load_owner();
    match message {
        Message::Owner => ink::return_message(&owner),
        Message::PublicKey => ink::return_message(&public_key()),
        Message::EcdsaPublicKey => {
            ink::return_message(&pink::ecdsa_public_key(&pink::derive_sr25519_key(ECDSA_SALT)))
        }
        Message::Sign(message) => ink::return_message_result(&sign(&owner, message).map(Bytes)),
        Message::Verify(message, signature) => ink::return_message(&verify(message, signature)),
    }
}
