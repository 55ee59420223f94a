//! ink! 4 conventions, so that clients built for ink! contracts (metadata-driven encoders,
//! `cargo contract`, polkadot.js, substrate-interface) talk to these contracts unchanged.
//!
//! - Input = 4-byte selector ‖ SCALE arguments; selector = blake2_256(label)[..4].
//! - A message returns `MessageResult<T>` = `Result<T, LangError>`: `0x00 ‖ SCALE(T)`.
//!   If `T` is itself a `Result` holding `Err`, the REVERT flag is set so the host rolls
//!   back every storage change of the call.
//! - An infallible constructor (`-> Self`) returns `ConstructorResult<()>` =
//!   `Result<(), LangError>` = `Ok(())` = `0x00`. (A fallible one, `-> Result<Self, E>`,
//!   would return `ConstructorResult<Result<(), E>>`, `0x00 0x00` on success.)
//! - Undecodable input (unknown selector, bad arguments) returns REVERT with
//!   `Err(LangError::CouldNotReadInput)` = `0x01 0x01` (that variant has index 1).
//! - Non-payable entry points trap when value was transferred.
//! - Storage: the root struct (its `Packed` fields, SCALE-encoded in order) lives at key
//!   `00 00 00 00`; a `Mapping` field has its own 4-byte root key and stores each entry at
//!   `root_key ‖ SCALE(key)`. Mutating messages write the root back after success.
//! - Events: data = event index (position in the metadata's event list) ‖ fields; topics
//!   are described at [`signature_topic`].

use crate::env;
use crate::scale::{Decode, Encode, Reader, Writer};
use crate::Hash;

pub type Selector = [u8; 4];

/// `ReturnFlags::REVERT` (bit 0).
pub const REVERT: u32 = 1;
/// Key of the storage root struct (ink! root key 0, SCALE-encoded as u32).
pub const ROOT_KEY: [u8; 4] = [0; 4];
/// pallet-contracts limit on storage key length (pink: `MaxStorageKeyLen` = 128).
pub const MAX_STORAGE_KEY_LEN: usize = 128;
/// Largest `Mapping` value the SDK reads (stack buffer); enough for the examples' types.
pub const MAX_MAPPING_VALUE_LEN: usize = 256;

/// Splits the call input into selector and argument reader.
pub fn split_selector(input: &[u8]) -> Option<(Selector, Reader<'_>)> {
    let mut r = Reader::new(input);
    let selector = r.take_array::<4>()?;
    Some((selector, r))
}

/// ink! answers any undecodable input with `Err(LangError::CouldNotReadInput)` + REVERT.
pub fn could_not_read_input() -> ! {
    env::return_value(REVERT, &[0x01, 0x01])
}

/// `Option<T>` → `T`, or end the call the way ink! does for undecodable input.
pub trait OrCouldNotRead<T> {
    fn or_could_not_read(self) -> T;
}

impl<T> OrCouldNotRead<T> for Option<T> {
    fn or_could_not_read(self) -> T {
        match self {
            Some(v) => v,
            None => could_not_read_input(),
        }
    }
}

/// Traps when value was transferred: all example entry points are non-payable. ink! does
/// this before decoding the input when no message of the contract is payable.
pub fn deny_payment() {
    if env::value_transferred() != 0 {
        env::trap_with("paid an unpayable message");
    }
}

/// Ends an infallible constructor successfully: `ConstructorResult<()>` = `Ok(())`.
pub fn return_constructor_ok() -> ! {
    env::return_value(0, &[0x00])
}

/// Ends a message with `Ok(value)` (the `MessageResult` wrapper), flags 0.
pub fn return_message<T: Encode + ?Sized>(value: &T) -> ! {
    return_wrapped(0, value)
}

/// Ends a message whose return type is `Result<T, E>`: `Err` additionally sets REVERT, so
/// the host discards the call's storage writes and events (the contract itself must not
/// write the root back in that case, as ink! does not).
pub fn return_message_result<T: Encode, E: Encode>(result: &Result<T, E>) -> ! {
    let flags = if result.is_err() { REVERT } else { 0 };
    return_wrapped(flags, result)
}

fn return_wrapped<T: Encode + ?Sized>(flags: u32, value: &T) -> ! {
    let buf = env::alloc(env::INPUT_CAPACITY);
    let mut w = Writer::new(buf);
    w.bytes(&[0x00]).put(value);
    env::return_value(flags, w.as_slice())
}

// --- storage -------------------------------------------------------------------------------

/// Reads the root struct's encoding into `buf`. A missing root means the contract was never
/// constructed; ink! panics ("storage entry was empty") and so do we.
pub fn load_root(buf: &mut [u8]) -> &[u8] {
    match env::get_storage(&ROOT_KEY, buf) {
        Some(bytes) => bytes,
        None => env::trap_with("storage entry was empty"),
    }
}

pub fn store_root(encoded: &[u8]) {
    env::set_storage(&ROOT_KEY, encoded);
}

/// A `Mapping<K, V>` field: entries live at `root_key ‖ SCALE(key)`.
pub struct Mapping {
    root_key: [u8; 4],
}

impl Mapping {
    pub const fn new(root_key: [u8; 4]) -> Self {
        Mapping { root_key }
    }

    fn with_key<K: Encode + ?Sized, R>(&self, key: &K, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut buf = [0u8; MAX_STORAGE_KEY_LEN];
        let mut w = Writer::new(&mut buf);
        w.bytes(&self.root_key).put(key);
        f(w.as_slice())
    }

    /// The decoded value, `None` when absent. A stored value that does not decode as `V`
    /// traps (ink!: "could not properly decode storage entry").
    pub fn get<K: Encode + ?Sized, V: for<'x> Decode<'x>>(&self, key: &K) -> Option<V> {
        let mut buf = [0u8; MAX_MAPPING_VALUE_LEN];
        let bytes = self.with_key(key, |k| env::get_storage(k, &mut buf))?;
        match Reader::new(bytes).read::<V>() {
            Some(v) => Some(v),
            None => env::trap_with("could not properly decode storage entry"),
        }
    }

    pub fn insert<K: Encode + ?Sized, V: Encode + ?Sized>(&self, key: &K, value: &V) {
        let mut buf = [0u8; MAX_MAPPING_VALUE_LEN];
        let mut w = Writer::new(&mut buf);
        w.put(value);
        let encoded = w.finish();
        self.with_key(key, |k| env::set_storage(k, encoded));
    }

    pub fn remove<K: Encode + ?Sized>(&self, key: &K) {
        self.with_key(key, |k| env::clear_storage(k));
    }

    pub fn contains<K: Encode + ?Sized>(&self, key: &K) -> bool {
        self.with_key(key, |k| env::contains_storage(k).is_some())
    }
}

// --- events --------------------------------------------------------------------------------

/// Topic 0 of an ink! 4 event: `"<StorageStruct>::<Event>"`.
///
/// ink! 4 builds every topic from a `PrefixedValue { prefix: &[u8], value: &T }` whose
/// SCALE encoding is `SCALE(prefix as a byte slice, i.e. compact length ‖ bytes)` ‖
/// `SCALE(value)`; an encoding of at most 32 bytes is the topic itself, zero-padded on the
/// right, a longer one is replaced by its blake2_256 hash (ink_env `TopicsBuilder::push_topic`
/// and `ink_codegen` events.rs, ink! v4.x). The signature topic uses an empty prefix (encoded
/// `0x00`) and the name as a fixed-size byte array (no length prefix), so for
/// `"Token::Transfer"` it is `0x00 ‖ "Token::Transfer"` padded to 32 bytes.
pub fn signature_topic(name: &[u8]) -> Hash {
    let mut buf = [0u8; MAX_STORAGE_KEY_LEN];
    let mut w = Writer::new(&mut buf);
    w.bytes(&[0x00]).bytes(name);
    topic_from_encoded(w.as_slice())
}

/// Topic of an `#[ink(topic)]` field: prefix `"<StorageStruct>::<Event>::<field>"` and the
/// field's value (see [`signature_topic`] for the rule).
pub fn field_topic<T: Encode + ?Sized>(prefix: &[u8], value: &T) -> Hash {
    let mut buf = [0u8; MAX_STORAGE_KEY_LEN + MAX_MAPPING_VALUE_LEN];
    let mut w = Writer::new(&mut buf);
    w.compact_u32(prefix.len() as u32).bytes(prefix).put(value);
    topic_from_encoded(w.as_slice())
}

fn topic_from_encoded(encoded: &[u8]) -> Hash {
    if encoded.len() <= 32 {
        let mut topic = [0u8; 32];
        topic[..encoded.len()].copy_from_slice(encoded);
        topic
    } else {
        env::blake2_256(encoded)
    }
}

/// Emits an event: `index` is the event's position in the metadata's event list, `fields`
/// the SCALE-encoded fields in declaration order.
pub fn emit_event(index: u8, fields: &[u8], topics: &[Hash]) {
    let buf = env::alloc(1 + fields.len());
    buf[0] = index;
    buf[1..].copy_from_slice(fields);
    env::deposit_event(topics, buf);
}
