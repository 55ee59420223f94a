//! Flipper: the smallest useful contract — one `bool` in storage, a constructor pair, one
//! mutating and one read-only message. Its ABI matches ink!'s `flipper` example exactly
//! (same selectors, storage layout and return encodings), so ink! tooling drives it as is.
//!
//! Storage: root struct `Flipper { value: bool }` at key `00 00 00 00`.

#![no_std]
#![no_main]

use phat_sdk::env;
use phat_sdk::ink::{self, OrCouldNotRead, Selector};
use phat_sdk::scale::Reader;

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const DEFAULT: Selector = [0xed, 0x4b, 0x9d, 0x1b];
const FLIP: Selector = [0x63, 0x3a, 0xa5, 0x51];
const GET: Selector = [0x2f, 0x86, 0x5b, 0xd9];

fn load() -> bool {
    let mut buf = [0u8; 1];
    match Reader::new(ink::load_root(&mut buf)).read::<bool>() {
        Some(value) => value,
        None => env::trap_with("could not properly decode storage entry"),
    }
}

fn store(value: bool) {
    ink::store_root(&[value as u8]);
}

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let value = match selector {
        NEW => args.read::<bool>().or_could_not_read(),
        DEFAULT => false,
        _ => ink::could_not_read_input(),
    };
    store(value);
    ink::return_constructor_ok()
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, _args) = ink::split_selector(env::input()).or_could_not_read();
    if selector != FLIP && selector != GET {
        ink::could_not_read_input();
    }
    // ink! loads the root before running any message.
    let value = load();
    match selector {
        FLIP => {
            store(!value);
            ink::return_message(&())
        }
        _ => ink::return_message(&value),
    }
}
