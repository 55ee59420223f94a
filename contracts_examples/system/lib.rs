//! System: our cluster system contract — what pink contracts ask of
//! `pink::system::SystemRef::instance()` (the address `system_contract_id` returns).
//!
//! It answers the messages of pink's `System` trait (`#[ink::trait_definition(namespace =
//! "pink_system")]`: selector = blake2_256("pink_system::System::<message>")[..4], label
//! `System::<message>`) and `ContractDeposit::change_deposit`, with the constructor, storage
//! layout and events of Phala's own system contract, so a contract or client built against
//! pink cannot tell the two apart by their encodings:
//!
//! - driver registry: `set_driver` (owner or administrators) keeps `(block, contract)` per
//!   name and pushes the previous one to the name's history; `get_driver`, `get_driver2`,
//!   `driver_history`; `PinkLogger` also emits `PinkEvent::SetLogHandler`;
//! - administrators: `grant_admin` (owner only), `is_admin`;
//! - environment: `total_balance_of` / `free_balance_of` (pink `balance_of`), `code_exists`,
//!   `code_hash`, `current_event_chain_head`, `version`;
//! - runtime control as pink events: `set_hook`, `set_contract_weight`, `upgrade_runtime`;
//!   `upgrade_system_contract` / `do_upgrade` as in Phala's contract;
//! - SideVM: phat_runtime has none, so `deploy_sidevm_to`, `stop_sidevm_at`,
//!   `deploy_sidevm_to_workers` and `set_sidevm_deadline` check the caller as pink's do and
//!   then answer `Err(ConditionNotMet)`, explaining why in the debug buffer.
//!
//! Storage (ink! 4 layout, as Phala's contract): root struct `System { owner, administrators,
//! drivers, drivers2, drivers_history }` at `00 00 00 00` (its encoding is `owner`);
//! `administrators: Mapping<AccountId, ()>`, `drivers: Mapping<String, AccountId>` (read-only
//! legacy), `drivers2: Mapping<String, (BlockNumber, AccountId)>`, `drivers_history:
//! Mapping<String, Vec<(BlockNumber, AccountId)>>`.
//!
//! Events: 0 `DriverChanged { name (topic), previous: Option<AccountId>, current }`,
//! 1 `AdministratorAdded { user }`.

#![no_std]
#![no_main]

use phat_sdk::ink::{self, Mapping, OrCouldNotRead, Selector, MAX_STORAGE_KEY_LEN};
use phat_sdk::pink::{self, LogLevel};
use phat_sdk::scale::{Bytes, Encode, Raw, Reader, Writer};
use phat_sdk::sys::seal1;
use phat_sdk::{env, AccountId, Balance, Hash};

// Selectors: blake2_256("pink_system::System::<message>")[..4] for the `System` trait,
// blake2_256(label)[..4] otherwise; build.py checks them against the metadata.
const DEFAULT: Selector = [0xed, 0x4b, 0x9d, 0x1b];
const OWNER: Selector = [0xfe, 0xae, 0xa4, 0xfa];
const SYSTEM_VERSION: Selector = [0x87, 0xc9, 0x8a, 0x8d];
const SYSTEM_GRANT_ADMIN: Selector = [0x67, 0x61, 0x20, 0x61];
const SYSTEM_SET_DRIVER: Selector = [0xaa, 0x1e, 0x20, 0x30];
const SYSTEM_GET_DRIVER: Selector = [0x27, 0x40, 0xcf, 0x0a];
const SYSTEM_GET_DRIVER2: Selector = [0xc0, 0xf2, 0x82, 0x23];
const SYSTEM_DEPLOY_SIDEVM_TO: Selector = [0x66, 0x2f, 0x4a, 0xa4];
const SYSTEM_STOP_SIDEVM_AT: Selector = [0x52, 0xa0, 0xfd, 0x6a];
const SYSTEM_SET_HOOK: Selector = [0x35, 0x2c, 0x6b, 0x5c];
const SYSTEM_SET_CONTRACT_WEIGHT: Selector = [0x45, 0xec, 0x9b, 0x18];
const SYSTEM_TOTAL_BALANCE_OF: Selector = [0x5a, 0x98, 0xf2, 0x26];
const SYSTEM_FREE_BALANCE_OF: Selector = [0x8a, 0x0d, 0x40, 0xd7];
const SYSTEM_IS_ADMIN: Selector = [0xf0, 0x6f, 0x05, 0x0a];
const SYSTEM_UPGRADE_SYSTEM_CONTRACT: Selector = [0xaf, 0x69, 0xca, 0x03];
const SYSTEM_DO_UPGRADE: Selector = [0x66, 0x7e, 0x00, 0x41];
const SYSTEM_UPGRADE_RUNTIME: Selector = [0x31, 0x7f, 0x6b, 0xf3];
const SYSTEM_CODE_EXISTS: Selector = [0x6f, 0xc5, 0x84, 0x36];
const SYSTEM_CODE_HASH: Selector = [0x91, 0x6f, 0xdb, 0x44];
const SYSTEM_DRIVER_HISTORY: Selector = [0xd5, 0x19, 0xdb, 0xec];
const SYSTEM_CURRENT_EVENT_CHAIN_HEAD: Selector = [0xe1, 0x46, 0x55, 0xd3];
const SYSTEM_DEPLOY_SIDEVM_TO_WORKERS: Selector = [0x0a, 0x7d, 0x87, 0xb2];
const SYSTEM_SET_SIDEVM_DEADLINE: Selector = [0xc9, 0xaf, 0x57, 0x38];
const CONTRACTDEPOSIT_CHANGE_DEPOSIT: Selector = [0xa2, 0x4b, 0xcb, 0x44];

// Mapping root keys (ink! 4 `AutoKey`: big-endian xxh32 of "System::<field>").
const ADMINISTRATORS_KEY: [u8; 4] = [0x11, 0xab, 0x09, 0x1d];
const DRIVERS_KEY: [u8; 4] = [0xe6, 0x9d, 0xae, 0xed];
const DRIVERS2_KEY: [u8; 4] = [0xae, 0x67, 0xf8, 0x33];
const DRIVERS_HISTORY_KEY: [u8; 4] = [0xd2, 0x23, 0x2f, 0xce];

const ADMINISTRATORS: Mapping = Mapping::new(ADMINISTRATORS_KEY);
const DRIVERS: Mapping = Mapping::new(DRIVERS_KEY);
const DRIVERS2: Mapping = Mapping::new(DRIVERS2_KEY);

/// `version()`: the API level of Phala's system contract whose interface this implements.
const VERSION: (u16, u16, u16) = (1, 0, 0);
/// Lowest pink runtime `do_upgrade` accepts (as Phala's contract).
const MIN_RUNTIME_VERSION: (u32, u32) = (1, 0);
/// `PinkEvent::SetLogHandler` is emitted when this driver is set.
const LOG_DRIVER: &[u8] = b"PinkLogger";
/// The driver `change_deposit` forwards to.
const DEPOSIT_DRIVER: &[u8] = b"ContractDeposit";
/// `CallFlags::ALLOW_REENTRY`: the upgrade and deposit paths call back into this contract.
const ALLOW_REENTRY: u32 = 8;
/// One `(BlockNumber, AccountId)` history entry.
const HISTORY_ENTRY_LEN: usize = 4 + 32;
/// Room for a driver's history value (≈ 450 entries).
const HISTORY_CAPACITY: usize = 16 * 1024;

/// `pink_extension::system::Error` (SCALE: the variant index).
#[derive(Clone, Copy)]
enum Error {
    PermisionDenied = 0, // sic: pink's spelling
    CodeNotFound = 2,
    ConditionNotMet = 3,
}

impl Encode for Error {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&(*self as u8));
    }
}

type Result<T> = core::result::Result<T, Error>;

// --- storage -------------------------------------------------------------------------------

fn load_owner() -> AccountId {
    let mut buf = [0u8; 32];
    match Reader::new(ink::load_root(&mut buf)).read::<AccountId>() {
        Some(owner) => owner,
        None => env::trap_with("could not properly decode storage entry"),
    }
}

/// `root_key ‖ SCALE(name)`: where a `Mapping<String, _>` keeps `name`'s entry.
fn name_key<'b>(
    root_key: &[u8; 4],
    name: &[u8],
    buf: &'b mut [u8; MAX_STORAGE_KEY_LEN],
) -> &'b [u8] {
    let mut w = Writer::new(buf);
    w.bytes(root_key).put(&Bytes(name));
    w.finish()
}

/// `drivers_history[name]` still SCALE-encoded (`Vec<(BlockNumber, AccountId)>`).
fn history(name: &[u8]) -> Option<&'static [u8]> {
    let mut key = [0u8; MAX_STORAGE_KEY_LEN];
    env::get_storage(name_key(&DRIVERS_HISTORY_KEY, name, &mut key), env::alloc(HISTORY_CAPACITY))
}

fn push_history(name: &[u8], entry: (u32, AccountId)) {
    let (count, entries) = match history(name) {
        Some(encoded) => {
            let mut r = Reader::new(encoded);
            match r.compact_u32() {
                Some(count) if r.remaining().len() == count as usize * HISTORY_ENTRY_LEN => {
                    (count, r.remaining())
                }
                _ => env::trap_with("could not properly decode storage entry"),
            }
        }
        None => (0, &[][..]),
    };
    let mut w = Writer::new(env::alloc(HISTORY_CAPACITY));
    w.compact_u32(count + 1).bytes(entries).put(&entry);
    let mut key = [0u8; MAX_STORAGE_KEY_LEN];
    env::set_storage(name_key(&DRIVERS_HISTORY_KEY, name, &mut key), w.as_slice());
}

fn get_driver2(name: &[u8]) -> Option<(u32, AccountId)> {
    DRIVERS2
        .get(&Bytes(name))
        .or_else(|| DRIVERS.get::<_, AccountId>(&Bytes(name)).map(|id| (0, id)))
}

// --- permissions ---------------------------------------------------------------------------

fn ensure_owner(owner: &AccountId) -> Result<AccountId> {
    let caller = env::caller();
    if caller == *owner {
        Ok(caller)
    } else {
        Err(Error::PermisionDenied)
    }
}

fn ensure_admin() -> Result<AccountId> {
    let caller = env::caller();
    if ADMINISTRATORS.contains(&caller) {
        Ok(caller)
    } else {
        Err(Error::PermisionDenied)
    }
}

fn ensure_owner_or_admin(owner: &AccountId) -> Result<AccountId> {
    ensure_owner(owner).or_else(|_| ensure_admin())
}

fn ensure_self() -> Result<AccountId> {
    let caller = env::caller();
    if caller == env::address() {
        Ok(caller)
    } else {
        Err(Error::PermisionDenied)
    }
}

// --- events --------------------------------------------------------------------------------

const DRIVER_CHANGED_EVENT: u8 = 0;
const ADMINISTRATOR_ADDED_EVENT: u8 = 1;

fn emit_driver_changed(name: &[u8], previous: Option<AccountId>, current: &AccountId) {
    let mut fields = Writer::new(env::alloc(5 + name.len() + 33 + 32));
    fields.put(&Bytes(name)).put(&previous).put(current);
    let topics = [
        ink::signature_topic(b"System::DriverChanged"),
        ink::field_topic(b"System::DriverChanged::name", &Bytes(name)),
    ];
    ink::emit_event(DRIVER_CHANGED_EVENT, fields.as_slice(), &topics);
}

fn emit_administrator_added(user: &AccountId) {
    let topics = [ink::signature_topic(b"System::AdministratorAdded")];
    ink::emit_event(ADMINISTRATOR_ADDED_EVENT, user, &topics);
}

/// Emits a `PinkEvent`: its variant index, then its fields.
fn emit_pink_event(index: u8, fields: &[u8]) {
    let buf = env::alloc(1 + fields.len());
    buf[0] = index;
    buf[1..].copy_from_slice(fields);
    pink::emit_pink_event(buf);
}

// --- messages ------------------------------------------------------------------------------

fn grant_admin(owner: &AccountId, contract_id: &AccountId) -> Result<()> {
    ensure_owner(owner)?;
    ADMINISTRATORS.insert(contract_id, &());
    emit_administrator_added(contract_id);
    Ok(())
}

fn set_driver(owner: &AccountId, name: &[u8], contract_id: &AccountId) -> Result<()> {
    ensure_owner_or_admin(owner)?;
    if name == LOG_DRIVER {
        emit_pink_event(pink::event::SET_LOG_HANDLER, contract_id);
    }
    let previous = get_driver2(name);
    if let Some((block, previous)) = previous {
        if previous == *contract_id {
            return Ok(());
        }
        push_history(name, (block, previous));
    }
    DRIVERS2.insert(&Bytes(name), &(pink::block_number(), *contract_id));
    emit_driver_changed(name, previous.map(|(_, id)| id), contract_id);
    Ok(())
}

/// The SideVM operations: checked like pink's (administrators only), then refused.
fn sidevm_unsupported(operation: &str) -> Result<()> {
    ensure_admin()?;
    env::debug(operation);
    env::debug(": not supported, phat_runtime has no SideVM");
    Err(Error::ConditionNotMet)
}

fn set_hook(contract: &AccountId, selector: u32, gas_limit: u64) -> Result<()> {
    ensure_admin()?;
    let mut fields = [0u8; 1 + 32 + 4 + 8];
    let mut w = Writer::new(&mut fields);
    w.put(&0u8).put(contract).put(&selector).put(&gas_limit); // HookPoint::OnBlockEnd
    emit_pink_event(pink::event::SET_HOOK, w.as_slice());
    Ok(())
}

fn set_contract_weight(contract_id: &AccountId, weight: u32) -> Result<()> {
    ensure_admin()?;
    let mut fields = [0u8; 32 + 4];
    let mut w = Writer::new(&mut fields);
    w.put(contract_id).put(&weight);
    emit_pink_event(pink::event::SET_CONTRACT_WEIGHT, w.as_slice());
    Ok(())
}

fn upgrade_runtime(owner: &AccountId, version: (u32, u32)) -> Result<()> {
    ensure_owner(owner)?;
    pink::log(LogLevel::Info, "Upgrading pink contract runtime...");
    let mut fields = [0u8; 8];
    let mut w = Writer::new(&mut fields);
    w.put(&version);
    emit_pink_event(pink::event::UPGRADE_RUNTIME_TO, w.as_slice());
    Ok(())
}

/// Phala's upgrade path: import the chain's latest system code, switch to it, and let the
/// new code vet the upgrade in `do_upgrade` (a failure there traps, rolling everything back).
fn upgrade_system_contract(owner: &AccountId) -> Result<()> {
    let caller = ensure_owner(owner)?;
    let code_hash = match pink::import_latest_system_code(&caller) {
        Some(code_hash) => code_hash,
        None => {
            pink::log(LogLevel::Error, "No new version of system contract found.");
            return Err(Error::CodeNotFound);
        }
    };
    if pink::own_code_hash() == code_hash {
        return Ok(());
    }
    if !pink::set_code_hash(&code_hash) {
        env::trap_with("System code should exist here");
    }
    let mut input = [0u8; 4 + 6];
    let mut w = Writer::new(&mut input);
    w.bytes(&SYSTEM_DO_UPGRADE).put(&VERSION.0).put(&VERSION.1).put(&VERSION.2);
    let mut out = [0u8; 3];
    // MessageResult<Result<(), Error>> = Ok(Ok(())) = 00 00.
    match reentrant_call(&env::address(), 0, w.as_slice(), &mut out) {
        Some([0, 0]) => Ok(()),
        _ => env::trap_with("Failed to call do_upgrade on the new system code"),
    }
}

fn do_upgrade(from_version: (u16, u16, u16)) -> Result<()> {
    ensure_self()?;
    if pink::runtime_version() < MIN_RUNTIME_VERSION || from_version >= VERSION {
        return Err(Error::ConditionNotMet);
    }
    Ok(())
}

/// `seal1.call` with `ALLOW_REENTRY`; the callee's output on success or revert.
fn reentrant_call<'b>(
    callee: &AccountId,
    value: Balance,
    input: &[u8],
    out: &'b mut [u8],
) -> Option<&'b [u8]> {
    let value = value.to_le_bytes();
    let mut len = out.len() as u32;
    let code = unsafe {
        seal1::call(
            ALLOW_REENTRY,
            callee.as_ptr(),
            0,
            value.as_ptr(),
            input.as_ptr(),
            input.len() as u32,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    match code {
        env::SUCCESS | env::CALLEE_REVERTED => Some(&out[..len as usize]),
        _ => None,
    }
}

/// `ContractDeposit::change_deposit`: only the contract itself may call it; forwarded to the
/// `ContractDeposit` driver when there is one. Returns the SCALE `Result<(), DriverError>`.
fn change_deposit(contract_id: &AccountId, deposit: Balance) -> &'static [u8] {
    // DriverError::SystemError(Error::PermisionDenied)
    const DENIED: &[u8] = &[1, 1, Error::PermisionDenied as u8];
    if ensure_self().is_err() {
        return DENIED;
    }
    let driver = match get_driver2(DEPOSIT_DRIVER) {
        Some((_, driver)) => driver,
        None => return &[0],
    };
    let mut input = [0u8; 4 + 32 + 16];
    let mut w = Writer::new(&mut input);
    w.bytes(&CONTRACTDEPOSIT_CHANGE_DEPOSIT).put(contract_id).put(&deposit);
    let out = env::alloc(1024);
    match reentrant_call(&driver, 0, w.as_slice(), out) {
        // Pass the driver's `Result<(), DriverError>` through as it encoded it.
        Some([0, result @ ..]) if !result.is_empty() => result,
        _ => env::trap_with("ContractDeposit driver call failed"),
    }
}

// --- entry points --------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, _) = ink::split_selector(env::input()).or_could_not_read();
    if selector != DEFAULT {
        ink::could_not_read_input();
    }
    ink::store_root(&env::caller());
    ink::return_constructor_ok()
}

/// A decoded call; strings borrow the call input.
enum Message {
    Owner,
    Version,
    GrantAdmin(AccountId),
    SetDriver(&'static [u8], AccountId),
    GetDriver(&'static [u8]),
    GetDriver2(&'static [u8]),
    Sidevm(&'static str),
    SetHook(AccountId, u32, u64),
    SetContractWeight(AccountId, u32),
    TotalBalanceOf(AccountId),
    FreeBalanceOf(AccountId),
    IsAdmin(AccountId),
    UpgradeSystemContract,
    DoUpgrade((u16, u16, u16)),
    UpgradeRuntime((u32, u32)),
    CodeExists(Hash, bool),
    CodeHash(AccountId),
    DriverHistory(&'static [u8]),
    CurrentEventChainHead,
    ChangeDeposit(AccountId, Balance),
}

/// A fieldless enum argument: its index, which must be below `variants`.
fn variant(args: &mut Reader, variants: u8) -> Option<u8> {
    args.read::<u8>().filter(|&index| index < variants)
}

fn decode(selector: Selector, args: &mut Reader<'static>) -> Option<Message> {
    Some(match selector {
        OWNER => Message::Owner,
        SYSTEM_VERSION => Message::Version,
        SYSTEM_GRANT_ADMIN => Message::GrantAdmin(args.read()?),
        SYSTEM_SET_DRIVER => Message::SetDriver(args.read()?, args.read()?),
        SYSTEM_GET_DRIVER => Message::GetDriver(args.read()?),
        SYSTEM_GET_DRIVER2 => Message::GetDriver2(args.read()?),
        SYSTEM_DEPLOY_SIDEVM_TO => {
            args.read::<(AccountId, Hash)>()?;
            Message::Sidevm("System::deploy_sidevm_to")
        }
        SYSTEM_STOP_SIDEVM_AT => {
            args.read::<AccountId>()?;
            Message::Sidevm("System::stop_sidevm_at")
        }
        SYSTEM_SET_HOOK => {
            variant(args, 1)?; // HookPoint::OnBlockEnd is the only hook point
            Message::SetHook(args.read()?, args.read()?, args.read()?)
        }
        SYSTEM_SET_CONTRACT_WEIGHT => Message::SetContractWeight(args.read()?, args.read()?),
        SYSTEM_TOTAL_BALANCE_OF => Message::TotalBalanceOf(args.read()?),
        SYSTEM_FREE_BALANCE_OF => Message::FreeBalanceOf(args.read()?),
        SYSTEM_IS_ADMIN => Message::IsAdmin(args.read()?),
        SYSTEM_UPGRADE_SYSTEM_CONTRACT => Message::UpgradeSystemContract,
        SYSTEM_DO_UPGRADE => Message::DoUpgrade((args.read()?, args.read()?, args.read()?)),
        SYSTEM_UPGRADE_RUNTIME => Message::UpgradeRuntime(args.read()?),
        // CodeType: 0 Ink, 1 Sidevm.
        SYSTEM_CODE_EXISTS => Message::CodeExists(args.read()?, variant(args, 2)? == 1),
        SYSTEM_CODE_HASH => Message::CodeHash(args.read()?),
        SYSTEM_DRIVER_HISTORY => Message::DriverHistory(args.read()?),
        SYSTEM_CURRENT_EVENT_CHAIN_HEAD => Message::CurrentEventChainHead,
        SYSTEM_DEPLOY_SIDEVM_TO_WORKERS => {
            // (contract_id, code_hash, workers: Vec<WorkerId>, config: SidevmConfig)
            args.read::<(AccountId, Hash)>()?;
            let workers = args.compact_u32()? as usize;
            args.take(workers.checked_mul(32)?)?;
            args.take(4 + 4 + 8 + 4)?;
            Message::Sidevm("System::deploy_sidevm_to_workers")
        }
        SYSTEM_SET_SIDEVM_DEADLINE => {
            args.read::<(AccountId, u32)>()?;
            Message::Sidevm("System::set_sidevm_deadline")
        }
        CONTRACTDEPOSIT_CHANGE_DEPOSIT => Message::ChangeDeposit(args.read()?, args.read()?),
        _ => return None,
    })
}

/// Ends a `&mut self` message: the root is written back after `Ok` (as ink! does), an `Err`
/// reverts.
fn finish_mut(owner: &AccountId, result: Result<()>) -> ! {
    if result.is_ok() {
        ink::store_root(owner);
    }
    ink::return_message_result(&result)
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    let owner = load_owner();
    match message {
        Message::Owner => ink::return_message(&owner),
        Message::Version => ink::return_message(&(VERSION.0, (VERSION.1, VERSION.2))),
        Message::GrantAdmin(contract_id) => finish_mut(&owner, grant_admin(&owner, &contract_id)),
        Message::SetDriver(name, contract_id) => {
            finish_mut(&owner, set_driver(&owner, name, &contract_id))
        }
        Message::GetDriver(name) => ink::return_message(&get_driver2(name).map(|(_, id)| id)),
        Message::GetDriver2(name) => ink::return_message(&get_driver2(name)),
        Message::Sidevm(operation) => ink::return_message_result(&sidevm_unsupported(operation)),
        Message::SetHook(contract, selector, gas_limit) => {
            finish_mut(&owner, set_hook(&contract, selector, gas_limit))
        }
        Message::SetContractWeight(contract_id, weight) => {
            ink::return_message_result(&set_contract_weight(&contract_id, weight))
        }
        Message::TotalBalanceOf(account) => ink::return_message(&pink::balance_of(&account).0),
        Message::FreeBalanceOf(account) => ink::return_message(&pink::balance_of(&account).1),
        Message::IsAdmin(contract_id) => {
            ink::return_message(&ADMINISTRATORS.contains(&contract_id))
        }
        Message::UpgradeSystemContract => finish_mut(&owner, upgrade_system_contract(&owner)),
        Message::DoUpgrade(from_version) => ink::return_message_result(&do_upgrade(from_version)),
        Message::UpgradeRuntime(version) => finish_mut(&owner, upgrade_runtime(&owner, version)),
        Message::CodeExists(code_hash, sidevm) => {
            ink::return_message(&pink::code_exists(&code_hash, sidevm))
        }
        Message::CodeHash(account) => ink::return_message(&pink::code_hash(&account)),
        Message::DriverHistory(name) => ink::return_message(&history(name).map(Raw)),
        Message::CurrentEventChainHead => ink::return_message(&pink::current_event_chain_head()),
        Message::ChangeDeposit(contract_id, deposit) => {
            let result = change_deposit(&contract_id, deposit);
            if result[0] == 0 {
                ink::store_root(&owner);
            }
            // `Result<(), DriverError>`: an `Err` (first byte 1) reverts.
            let flags = if result[0] == 0 { 0 } else { ink::REVERT };
            let buf = env::alloc(1 + result.len());
            buf[0] = 0x00; // MessageResult::Ok
            buf[1..].copy_from_slice(result);
            env::return_value(flags, buf)
        }
    }
}
