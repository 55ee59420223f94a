//! Factory: cross-contract calls. It instantiates flipper children from a code hash
//! (`seal1.instantiate`), calls them (`seal1.call`) and decodes their ink! 4 results.
//!
//! A failing sub-call (host code ≠ 0, or a child answering `Err(LangError)`) traps this
//! call with a reason in the debug buffer, as ink!'s `CallBuilder::invoke` /
//! `CreateBuilder::instantiate` panic; the host then rolls everything back.
//!
//! Storage: root struct `Factory { child_code_hash: Hash, children: Vec<AccountId> }` at
//! `00 00 00 00` (SCALE: the hash ‖ compact length ‖ ids).

#![no_std]
#![no_main]

use phat_sdk::ink::{self, OrCouldNotRead, Selector};
use phat_sdk::scale::{Raw, Reader, Writer};
use phat_sdk::{env, AccountId, Hash};

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const CREATE: Selector = [0xab, 0x70, 0x0a, 0x1b];
const FLIP_CHILD: Selector = [0x7d, 0xfb, 0xb7, 0xf0];
const GET_CHILD: Selector = [0x55, 0xfa, 0xc8, 0x55];
const CHILDREN: Selector = [0xe7, 0x63, 0xbf, 0x8d];

/// The child's (flipper's) selectors.
const CHILD_NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const CHILD_FLIP: Selector = [0x63, 0x3a, 0xa5, 0x51];
const CHILD_GET: Selector = [0x2f, 0x86, 0x5b, 0xd9];

/// Bounds the root value so it always fits the buffer it is read into.
const MAX_CHILDREN: usize = 256;
const ROOT_CAPACITY: usize = 32 + 5 + 32 * MAX_CHILDREN;
/// Children's outputs are a few bytes; anything larger is not a flipper.
const CHILD_OUTPUT_CAPACITY: usize = 64;

/// The decoded root struct; `children` stays SCALE-encoded (`Vec<AccountId>`).
struct Factory {
    child_code_hash: Hash,
    count: u32,
    children: &'static [u8],
}

fn decode_root(bytes: &'static [u8]) -> Option<Factory> {
    let mut r = Reader::new(bytes);
    let child_code_hash = r.read::<Hash>()?;
    let count = r.compact_u32()?;
    let children = r.take((count as usize).checked_mul(32)?)?;
    Some(Factory { child_code_hash, count, children })
}

fn load() -> Factory {
    match decode_root(ink::load_root(env::alloc(ROOT_CAPACITY))) {
        Some(root) => root,
        None => env::trap_with("could not properly decode storage entry"),
    }
}

/// Writes the root back, with `extra` appended to `children` when given.
fn store(root: &Factory, extra: Option<&AccountId>) {
    let count = root.count + extra.is_some() as u32;
    if count as usize > MAX_CHILDREN {
        env::trap_with("factory: too many children");
    }
    let buf = env::alloc(ROOT_CAPACITY);
    let mut w = Writer::new(buf);
    w.put(&root.child_code_hash).compact_u32(count).bytes(root.children);
    if let Some(child) = extra {
        w.put(child);
    }
    ink::store_root(w.as_slice());
}

/// Calls `selector` on `child` and returns the value inside its `Ok(..)` MessageResult.
fn call_child(child: &AccountId, selector: Selector) -> &'static [u8] {
    let out = env::alloc(CHILD_OUTPUT_CAPACITY);
    let result = env::call(child, 0, &selector, out);
    if result.code != env::SUCCESS {
        env::trap_with("factory: call to child failed");
    }
    match result.output.split_first() {
        Some((0x00, value)) => value,
        _ => env::trap_with("factory: child returned LangError"),
    }
}

fn create(root: &Factory, init_value: bool, salt: &[u8]) -> AccountId {
    let mut input = [0u8; 5];
    input[..4].copy_from_slice(&CHILD_NEW);
    input[4] = init_value as u8;
    let out = env::alloc(CHILD_OUTPUT_CAPACITY);
    let result = env::instantiate(&root.child_code_hash, 0, &input, salt, out);
    if result.code != env::SUCCESS {
        env::trap_with("factory: instantiating the child failed");
    }
    // ConstructorResult<()> of flipper's infallible `new`: Ok(()).
    if result.output != [0x00] {
        env::trap_with("factory: child constructor returned an error");
    }
    result.address
}

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    if selector != NEW {
        ink::could_not_read_input();
    }
    let child_code_hash: Hash = args.read().or_could_not_read();
    let root = Factory { child_code_hash, count: 0, children: &[] };
    store(&root, None);
    ink::return_constructor_ok()
}

enum Message<'a> {
    Create(bool, &'a [u8]),
    FlipChild(AccountId),
    GetChild(AccountId),
    Children,
}

fn decode<'a>(selector: Selector, args: &mut Reader<'a>) -> Option<Message<'a>> {
    Some(match selector {
        CREATE => Message::Create(args.read()?, args.read()?),
        FLIP_CHILD => Message::FlipChild(args.read()?),
        GET_CHILD => Message::GetChild(args.read()?),
        CHILDREN => Message::Children,
        _ => return None,
    })
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    let root = load();
    match message {
        Message::Create(init_value, salt) => {
            let child = create(&root, init_value, salt);
            store(&root, Some(&child));
            ink::return_message(&child)
        }
        Message::FlipChild(child) => {
            call_child(&child, CHILD_FLIP);
            // A `&mut self` message in ink!: the root is written back.
            store(&root, None);
            ink::return_message(&())
        }
        Message::GetChild(child) => match call_child(&child, CHILD_GET) {
            [0] => ink::return_message(&false),
            [1] => ink::return_message(&true),
            _ => env::trap_with("factory: child returned a malformed bool"),
        },
        Message::Children => {
            // `Vec<AccountId>`: re-add the length prefix to the stored ids.
            let buf = env::alloc(ROOT_CAPACITY);
            let mut w = Writer::new(buf);
            w.compact_u32(root.count).bytes(root.children);
            ink::return_message(&Raw(w.as_slice()))
        }
    }
}
