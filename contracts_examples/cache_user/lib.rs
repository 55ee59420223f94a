//! CacheUser: pink's per-contract local cache (chain-extension functions 6–9) behind four
//! messages.
//!
//! The cache lives in the worker, not in contract storage: it is not persistent, not
//! replicated, and readable only in queries. pink runs the same functions with two
//! behaviours — in a query they read and write the cache directly; in a transaction
//! `cache_get` answers `None` and `cache_set` / `cache_remove` / `cache_set_expiration` emit a
//! private `PinkEvent::CacheOp` that the worker applies after the block. This contract does
//! not branch on the mode: it shows what the host does.
//!
//! Storage: root struct `CacheUser {}` at `00 00 00 00` (empty); nothing else.

#![no_std]
#![no_main]

use phat_sdk::ink::{self, OrCouldNotRead, Selector};
use phat_sdk::scale::{Bytes, Encode, Reader, Writer};
use phat_sdk::{env, pink};

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const SET: Selector = [0xe8, 0xc4, 0x5e, 0xb6];
const GET: Selector = [0x2f, 0x86, 0x5b, 0xd9];
const REMOVE: Selector = [0xe9, 0xc0, 0x84, 0xb2];
const SET_EXPIRATION: Selector = [0xab, 0xc1, 0xcf, 0xe5];

/// `cache_user::cache_user::Error` (SCALE: the variant index).
#[derive(Clone, Copy)]
enum Error {
    StorageQuotaExceeded = 0,
}

impl Encode for Error {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&(*self as u8));
    }
}

/// The root struct is empty, but ink! reads it before every message (and traps if the
/// contract was never constructed); so do we.
fn load_root() {
    ink::load_root(&mut []);
}

/// `&mut self` messages write the (empty) root back after success, as ink! does.
fn store_root() {
    ink::store_root(&[]);
}

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, _) = ink::split_selector(env::input()).or_could_not_read();
    if selector != NEW {
        ink::could_not_read_input();
    }
    store_root();
    ink::return_constructor_ok()
}

/// A decoded call; byte strings borrow the call input.
enum Message {
    Set(&'static [u8], &'static [u8]),
    Get(&'static [u8]),
    Remove(&'static [u8]),
    SetExpiration(&'static [u8], u64),
}

fn decode(selector: Selector, args: &mut Reader<'static>) -> Option<Message> {
    Some(match selector {
        SET => Message::Set(args.read()?, args.read()?),
        GET => Message::Get(args.read()?),
        REMOVE => Message::Remove(args.read()?),
        SET_EXPIRATION => Message::SetExpiration(args.read()?, args.read()?),
        _ => return None,
    })
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    load_root();
    match message {
        Message::Set(key, value) => {
            let result = pink::cache_set(key, value)
                .map_err(|pink::StorageQuotaExceeded| Error::StorageQuotaExceeded);
            if result.is_ok() {
                store_root();
            }
            ink::return_message_result(&result)
        }
        Message::Get(key) => ink::return_message(&pink::cache_get(key).map(Bytes)),
        Message::Remove(key) => {
            let removed = pink::cache_remove(key).map(Bytes);
            store_root();
            ink::return_message(&removed)
        }
        Message::SetExpiration(key, seconds) => {
            pink::cache_set_expiration(key, seconds);
            store_root();
            ink::return_message(&())
        }
    }
}
