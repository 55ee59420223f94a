//! Token: an ERC-20 in the shape of ink!'s `erc20` example — `Mapping` storage, messages
//! returning `Result<(), Error>` (an `Err` reverts the call), and events with indexed
//! fields (topics).
//!
//! Storage (ink! 4 layout):
//! - root struct `Token { total_supply: Balance, balances, allowances }` at `00 00 00 00`;
//!   its encoding is just `total_supply` (a `Mapping` field encodes to nothing);
//! - `balances: Mapping<AccountId, Balance>` at `BALANCES_KEY ‖ owner`;
//! - `allowances: Mapping<(AccountId, AccountId), Balance>` at
//!   `ALLOWANCES_KEY ‖ owner ‖ spender`.
//!
//! Events (index = order in the metadata): 0 `Transfer { from: Option<AccountId> (topic),
//! to: Option<AccountId> (topic), value: Balance }`, 1 `Approval { owner (topic),
//! spender (topic), value }`.

#![no_std]
#![no_main]

use phat_sdk::ink::{self, Mapping, OrCouldNotRead, Selector};
use phat_sdk::scale::{Encode, Reader, Writer};
use phat_sdk::{env, AccountId, Balance};

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const TOTAL_SUPPLY: Selector = [0xdb, 0x63, 0x75, 0xa8];
const BALANCE_OF: Selector = [0x0f, 0x75, 0x5a, 0x56];
const ALLOWANCE: Selector = [0x6a, 0x00, 0x16, 0x5e];
const TRANSFER: Selector = [0x84, 0xa1, 0x5d, 0xa1];
const APPROVE: Selector = [0x68, 0x12, 0x66, 0xa0];
const TRANSFER_FROM: Selector = [0x0b, 0x39, 0x6f, 0x18];

// Mapping root keys, as ink! 4 derives them for `AutoKey` fields: xxh32 (seed 0) of
// "<StorageStruct>::<field>", stored as the big-endian bytes of the hash. build.py checks
// them against the metadata's `root_key`s.
const BALANCES_KEY: [u8; 4] = [0xc5, 0x92, 0x9d, 0x1a];
const ALLOWANCES_KEY: [u8; 4] = [0xb7, 0xb8, 0x1f, 0x8c];

const BALANCES: Mapping = Mapping::new(BALANCES_KEY);
const ALLOWANCES: Mapping = Mapping::new(ALLOWANCES_KEY);

/// `token::token::Error` (SCALE: the variant index).
#[derive(Clone, Copy)]
enum Error {
    InsufficientBalance = 0,
    InsufficientAllowance = 1,
}

impl Encode for Error {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&(*self as u8));
    }
}

// --- storage -------------------------------------------------------------------------------

fn load_total_supply() -> Balance {
    let mut buf = [0u8; 16];
    match Reader::new(ink::load_root(&mut buf)).read::<Balance>() {
        Some(v) => v,
        None => env::trap_with("could not properly decode storage entry"),
    }
}

fn store_root(total_supply: Balance) {
    ink::store_root(&total_supply.to_le_bytes());
}

fn balance_of(owner: &AccountId) -> Balance {
    BALANCES.get(owner).unwrap_or(0)
}

fn allowance(owner: &AccountId, spender: &AccountId) -> Balance {
    ALLOWANCES.get(&(owner, spender)).unwrap_or(0)
}

// --- events --------------------------------------------------------------------------------

const TRANSFER_EVENT: u8 = 0;
const APPROVAL_EVENT: u8 = 1;

fn emit_transfer(from: Option<AccountId>, to: Option<AccountId>, value: Balance) {
    let mut buf = [0u8; 33 + 33 + 16];
    let mut fields = Writer::new(&mut buf);
    fields.put(&from).put(&to).put(&value);
    let topics = [
        ink::signature_topic(b"Token::Transfer"),
        ink::field_topic(b"Token::Transfer::from", &from),
        ink::field_topic(b"Token::Transfer::to", &to),
    ];
    ink::emit_event(TRANSFER_EVENT, fields.as_slice(), &topics);
}

fn emit_approval(owner: &AccountId, spender: &AccountId, value: Balance) {
    let mut buf = [0u8; 32 + 32 + 16];
    let mut fields = Writer::new(&mut buf);
    fields.put(owner).put(spender).put(&value);
    let topics = [
        ink::signature_topic(b"Token::Approval"),
        ink::field_topic(b"Token::Approval::owner", owner),
        ink::field_topic(b"Token::Approval::spender", spender),
    ];
    ink::emit_event(APPROVAL_EVENT, fields.as_slice(), &topics);
}

// --- logic ---------------------------------------------------------------------------------

/// Checks before writing, so a failed transfer leaves storage untouched even before the
/// host's REVERT rollback.
fn transfer_from_to(from: &AccountId, to: &AccountId, value: Balance) -> Result<(), Error> {
    let from_balance = balance_of(from);
    if from_balance < value {
        return Err(Error::InsufficientBalance);
    }
    BALANCES.insert(from, &(from_balance - value));
    // Cannot overflow: all balances sum to total_supply, itself a u128.
    let to_balance = balance_of(to);
    BALANCES.insert(to, &(to_balance.wrapping_add(value)));
    emit_transfer(Some(*from), Some(*to), value);
    Ok(())
}

fn transfer_from(from: &AccountId, to: &AccountId, value: Balance) -> Result<(), Error> {
    let caller = env::caller();
    let allowance = allowance(from, &caller);
    if allowance < value {
        return Err(Error::InsufficientAllowance);
    }
    transfer_from_to(from, to, value)?;
    ALLOWANCES.insert(&(from, &caller), &(allowance - value));
    Ok(())
}

fn approve(spender: &AccountId, value: Balance) -> Result<(), Error> {
    let owner = env::caller();
    ALLOWANCES.insert(&(&owner, spender), &value);
    emit_approval(&owner, spender, value);
    Ok(())
}

// --- entry points --------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    if selector != NEW {
        ink::could_not_read_input();
    }
    let total_supply: Balance = args.read().or_could_not_read();
    let caller = env::caller();
    BALANCES.insert(&caller, &total_supply);
    emit_transfer(None, Some(caller), total_supply);
    store_root(total_supply);
    ink::return_constructor_ok()
}

/// A decoded call: ink! decodes the whole input before touching storage.
enum Message {
    TotalSupply,
    BalanceOf(AccountId),
    Allowance(AccountId, AccountId),
    Transfer(AccountId, Balance),
    Approve(AccountId, Balance),
    TransferFrom(AccountId, AccountId, Balance),
}

fn decode(selector: Selector, args: &mut Reader) -> Option<Message> {
    Some(match selector {
        TOTAL_SUPPLY => Message::TotalSupply,
        BALANCE_OF => Message::BalanceOf(args.read()?),
        ALLOWANCE => Message::Allowance(args.read()?, args.read()?),
        TRANSFER => Message::Transfer(args.read()?, args.read()?),
        APPROVE => Message::Approve(args.read()?, args.read()?),
        TRANSFER_FROM => Message::TransferFrom(args.read()?, args.read()?, args.read()?),
        _ => return None,
    })
}

/// Ends a mutating message: on `Ok` the root is written back (as ink! does for `&mut self`
/// messages), on `Err` nothing is written and the call reverts.
fn finish_mut(total_supply: Balance, result: Result<(), Error>) -> ! {
    if result.is_ok() {
        store_root(total_supply);
    }
    ink::return_message_result(&result)
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    let total_supply = load_total_supply();
    match message {
        Message::TotalSupply => ink::return_message(&total_supply),
        Message::BalanceOf(owner) => ink::return_message(&balance_of(&owner)),
        Message::Allowance(owner, spender) => ink::return_message(&allowance(&owner, &spender)),
        Message::Transfer(to, value) => {
            let from = env::caller();
            finish_mut(total_supply, transfer_from_to(&from, &to, value))
        }
        Message::Approve(spender, value) => finish_mut(total_supply, approve(&spender, value)),
        Message::TransferFrom(from, to, value) => {
            finish_mut(total_supply, transfer_from(&from, &to, value))
        }
    }
}
