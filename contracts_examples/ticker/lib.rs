//! Ticker: an ordinary Phat contract that leans on the cluster — it needs the system contract
//! to be deployed, counts blocks with an `OnBlockEnd` hook it sets through the system
//! contract, and reads balances with pink's `balance_of`.
//!
//! - `new()` reaches `pink::system::SystemRef::instance()` (here: `system_contract_id` and a
//!   `System::get_driver` call, as Phala's own `check_system` test contract does), so it
//!   deploys only in a cluster that has a system contract;
//! - `register_hook(gas_limit)` (owner only) asks the system contract to call
//!   `on_block_end` at the end of every block — the ticker must have been granted admin by
//!   the system contract's owner (`System::grant_admin`), otherwise the system answers
//!   `PermisionDenied`;
//! - `on_block_end()` is for the runtime only (the caller must be the contract itself, the
//!   origin pink uses for hooks): it counts, remembers the block, and logs `tick <n>`; when
//!   `set_failing(true)` it traps instead, to show that a failing hook does not fail a block;
//! - `balance_of(account)` is pink's `balance_of` from an ordinary contract (queries and
//!   transactions); `system_total_balance_of(account)` asks the system contract.
//!
//! Storage: root struct `Ticker { owner: AccountId, ticks: u32, last_block: BlockNumber,
//! failing: bool }` at `00 00 00 00`.

#![no_std]
#![no_main]

use phat_sdk::ink::{self, OrCouldNotRead, Selector};
use phat_sdk::pink::{self, LogLevel};
use phat_sdk::scale::{Encode, Reader, Writer};
use phat_sdk::{env, AccountId};

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const OWNER: Selector = [0xfe, 0xae, 0xa4, 0xfa];
const REGISTER_HOOK: Selector = [0xed, 0xb7, 0x19, 0xf6];
const ON_BLOCK_END: Selector = [0x82, 0x79, 0x6c, 0x7f];
const SET_FAILING: Selector = [0xd8, 0x18, 0x94, 0xb0];
const TICKS: Selector = [0x50, 0x3d, 0x37, 0xde];
const BALANCE_OF: Selector = [0x0f, 0x75, 0x5a, 0x56];
const SYSTEM_TOTAL_BALANCE_OF: Selector = [0xe1, 0x18, 0x14, 0x8f];

/// The driver name `new()` looks up: any name will do, the point is reaching the system.
const PROBE_DRIVER: &[u8] = b"NotExists";
/// `owner ‖ ticks ‖ last_block ‖ failing`.
const ROOT_LEN: usize = 32 + 4 + 4 + 1;

/// `ticker::ticker::Error` (SCALE: variant index ‖ fields).
#[derive(Clone, Copy)]
enum Error {
    NotOwner,
    NotRuntime,
    /// The system contract refused (pink's `system::Error` variant index).
    System(u8),
}

impl Encode for Error {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            Error::NotOwner => w.put(&0u8),
            Error::NotRuntime => w.put(&1u8),
            Error::System(error) => w.put(&2u8).put(error),
        };
    }
}

type Result<T> = core::result::Result<T, Error>;

struct Ticker {
    owner: AccountId,
    ticks: u32,
    last_block: u32,
    failing: bool,
}

impl Ticker {
    fn load() -> Self {
        let mut buf = [0u8; ROOT_LEN];
        let mut r = Reader::new(ink::load_root(&mut buf));
        match (r.read(), r.read(), r.read(), r.read()) {
            (Some(owner), Some(ticks), Some(last_block), Some(failing)) => {
                Ticker { owner, ticks, last_block, failing }
            }
            _ => env::trap_with("could not properly decode storage entry"),
        }
    }

    fn store(&self) {
        let mut buf = [0u8; ROOT_LEN];
        let mut w = Writer::new(&mut buf);
        w.put(&self.owner).put(&self.ticks).put(&self.last_block).put(&self.failing);
        ink::store_root(w.as_slice());
    }

    fn ensure_owner(&self) -> Result<()> {
        if env::caller() == self.owner {
            Ok(())
        } else {
            Err(Error::NotOwner)
        }
    }

    fn register_hook(&self, gas_limit: u64) -> Result<()> {
        self.ensure_owner()?;
        let selector = u32::from_be_bytes(ON_BLOCK_END);
        pink::system::set_hook(&env::address(), selector, gas_limit).map_err(Error::System)
    }

    fn on_block_end(&mut self) -> Result<()> {
        if env::caller() != env::address() {
            return Err(Error::NotRuntime);
        }
        if self.failing {
            env::trap_with("ticker: asked to fail its hook");
        }
        self.ticks += 1;
        self.last_block = pink::block_number();
        let mut text = [0u8; 16];
        pink::log(LogLevel::Info, tick_message(self.ticks, &mut text));
        Ok(())
    }

    fn set_failing(&mut self, failing: bool) -> Result<()> {
        self.ensure_owner()?;
        self.failing = failing;
        Ok(())
    }
}

/// `"tick <n>"` without a formatter.
fn tick_message(n: u32, buf: &mut [u8; 16]) -> &str {
    buf[..5].copy_from_slice(b"tick ");
    let mut digits = [0u8; 10];
    let (mut i, mut v) = (digits.len(), n);
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = 5 + digits.len() - i;
    buf[5..len].copy_from_slice(&digits[i..]);
    core::str::from_utf8(&buf[..len]).unwrap_or("tick")
}

/// Ends a `&mut self` message: the root is written back after `Ok`, an `Err` reverts.
fn finish_mut(ticker: &Ticker, result: Result<()>) -> ! {
    if result.is_ok() {
        ticker.store();
    }
    ink::return_message_result(&result)
}

// --- entry points --------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, _) = ink::split_selector(env::input()).or_could_not_read();
    if selector != NEW {
        ink::could_not_read_input();
    }
    // SystemRef::instance(): traps when the cluster has no system contract.
    let _ = pink::system::get_driver(PROBE_DRIVER);
    Ticker { owner: env::caller(), ticks: 0, last_block: 0, failing: false }.store();
    ink::return_constructor_ok()
}

/// A decoded call.
enum Message {
    Owner,
    RegisterHook(u64),
    OnBlockEnd,
    SetFailing(bool),
    Ticks,
    BalanceOf(AccountId),
    SystemTotalBalanceOf(AccountId),
}

fn decode(selector: Selector, args: &mut Reader<'static>) -> Option<Message> {
    Some(match selector {
        OWNER => Message::Owner,
        REGISTER_HOOK => Message::RegisterHook(args.read()?),
        ON_BLOCK_END => Message::OnBlockEnd,
        SET_FAILING => Message::SetFailing(args.read()?),
        TICKS => Message::Ticks,
        BALANCE_OF => Message::BalanceOf(args.read()?),
        SYSTEM_TOTAL_BALANCE_OF => Message::SystemTotalBalanceOf(args.read()?),
        _ => return None,
    })
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    let mut ticker = Ticker::load();
    match message {
        Message::Owner => ink::return_message(&ticker.owner),
        Message::RegisterHook(gas_limit) => {
            let result = ticker.register_hook(gas_limit);
            ink::return_message_result(&result)
        }
        Message::OnBlockEnd => {
            let result = ticker.on_block_end();
            finish_mut(&ticker, result)
        }
        Message::SetFailing(failing) => {
            let result = ticker.set_failing(failing);
            finish_mut(&ticker, result)
        }
        Message::Ticks => ink::return_message(&(ticker.ticks, ticker.last_block)),
        Message::BalanceOf(account) => ink::return_message(&pink::balance_of(&account)),
        Message::SystemTotalBalanceOf(account) => {
            ink::return_message(&pink::system::total_balance_of(&account))
        }
    }
}
