//! Oracle: a price feed signed inside the contract. `get_price(url)` GETs a JSON body over
//! pink's HTTP (queries only), reads its `price`, and signs `(price, timestamp)` with a
//! secp256k1 key derived from the cluster key — a key no one outside the contract ever
//! sees, whose Ethereum address anyone can check a report against.
//!
//! What is signed, so that any Ethereum library (or Solidity's `ecrecover`) can verify it:
//!
//! ```text
//! packed    = abi.encodePacked(uint128 price, uint64 timestamp_ms)   // 16 + 8 bytes, big-endian
//! digest    = keccak256(packed)
//! hash      = keccak256("\x19Ethereum Signed Message:\n32" ‖ digest) // EIP-191 personal message
//! signature = ecdsa_sign_prehashed(key, hash)                        // r ‖ s ‖ v, v ∈ {0, 1}
//! signer    = ecdsa_to_eth_address(get_public_key(Ecdsa, key))
//! ```
//!
//! `key` = the first 32 bytes of `derive_sr25519_key(b"oracle-ecdsa")` — the same on every
//! worker of the cluster, different for every contract. (Add 27 to v for `ecrecover`.) The
//! report does not name its feed: deploy one oracle per feed, or extend `packed`.
//!
//! Prices have `DECIMALS` = 8 digits after the point (`"123.45"` → 12 345 000 000); finer
//! digits are truncated.
//!
//! Storage: root struct `Oracle {}` at `00 00 00 00` (empty): nothing secret is ever stored.

#![no_std]
#![no_main]

mod json;

use phat_sdk::ink::{self, OrCouldNotRead, Selector};
use phat_sdk::pink::{self, HttpRequest, Sr25519Secret};
use phat_sdk::scale::{Encode, Reader, Writer};
use phat_sdk::{env, Hash};

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const GET_PRICE: Selector = [0xf2, 0x3d, 0x4b, 0x6c];
const SIGNER_ADDRESS: Selector = [0x36, 0xda, 0xe5, 0x0c];
const DRIVER: Selector = [0x38, 0xee, 0x11, 0xdc];

/// Digits after the decimal point of every reported price.
const DECIMALS: i32 = 8;
/// Salt of the signing key (`derive_sr25519_key`); its first 32 bytes are the ecdsa secret.
const KEY_SALT: &[u8] = b"oracle-ecdsa";
/// EIP-191 prefix of a 32-byte personal message.
const ETH_MESSAGE_PREFIX: &[u8; 28] = b"\x19Ethereum Signed Message:\n32";

/// `oracle::oracle::PriceReport`.
struct PriceReport {
    price: u128,
    timestamp_ms: u64,
    signature: [u8; 65],
    signer: [u8; 20],
}

impl Encode for PriceReport {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&self.price).put(&self.timestamp_ms).put(&self.signature).put(&self.signer);
    }
}

/// `oracle::oracle::Error` (SCALE: variant index ‖ fields).
enum Error {
    QueryOnly,
    HttpStatus(u16),
    InvalidBody,
}

impl Encode for Error {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            Error::QueryOnly => w.put(&0u8),
            Error::HttpStatus(code) => w.put(&1u8).put(code),
            Error::InvalidBody => w.put(&2u8),
        };
    }
}

// --- signing -------------------------------------------------------------------------------

fn signing_key() -> Sr25519Secret {
    pink::derive_sr25519_key(KEY_SALT)
}

fn signer_address(key: &Sr25519Secret) -> [u8; 20] {
    pink::ecdsa_to_eth_address(&pink::ecdsa_public_key(key))
}

/// The EIP-191 hash of the packed report (see the module docs).
fn report_hash(price: u128, timestamp_ms: u64) -> Hash {
    let mut packed = [0u8; 16 + 8];
    packed[..16].copy_from_slice(&price.to_be_bytes());
    packed[16..].copy_from_slice(&timestamp_ms.to_be_bytes());
    let mut message = [0u8; 28 + 32];
    message[..28].copy_from_slice(ETH_MESSAGE_PREFIX);
    message[28..].copy_from_slice(&pink::keccak_256(&packed));
    pink::keccak_256(&message)
}

fn get_price(url: &[u8]) -> Result<PriceReport, Error> {
    // pink answers HTTP in a transaction with a canned 523; say why instead.
    if pink::is_in_transaction() {
        return Err(Error::QueryOnly);
    }
    let headers = [(&b"Accept"[..], &b"application/json"[..])];
    let response =
        pink::http_request(&HttpRequest { url, method: b"GET", headers: &headers, body: &[] });
    if response.status_code != 200 {
        return Err(Error::HttpStatus(response.status_code));
    }
    let price = json::price(response.body, DECIMALS).ok_or(Error::InvalidBody)?;
    let timestamp_ms = pink::untrusted_millis_since_unix_epoch();
    let key = signing_key();
    let signature =
        pink::ecdsa_sign_prehashed(key.ecdsa_secret(), &report_hash(price, timestamp_ms));
    Ok(PriceReport { price, timestamp_ms, signature, signer: signer_address(&key) })
}

// --- entry points --------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, _) = ink::split_selector(env::input()).or_could_not_read();
    if selector != NEW {
        ink::could_not_read_input();
    }
    ink::store_root(&[]);
    ink::return_constructor_ok()
}

/// A decoded call; strings borrow the call input.
enum Message {
    GetPrice(&'static [u8]),
    SignerAddress,
    Driver(&'static [u8]),
}

fn decode(selector: Selector, args: &mut Reader<'static>) -> Option<Message> {
    Some(match selector {
        GET_PRICE => Message::GetPrice(args.read()?),
        SIGNER_ADDRESS => Message::SignerAddress,
        DRIVER => Message::Driver(args.read()?),
        _ => return None,
    })
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    // The root is empty, but ink! reads it first (and traps if never constructed).
    ink::load_root(&mut []);
    match message {
        Message::GetPrice(url) => ink::return_message_result(&get_price(url)),
        Message::SignerAddress => ink::return_message(&signer_address(&signing_key())),
        Message::Driver(name) => ink::return_message(&pink::system::get_driver(name)),
    }
}
