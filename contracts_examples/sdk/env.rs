//! Safe wrappers over the host imports, plus the per-call memory arena.
//!
//! Buffer rule of the seal ABI (HOST-ABI.md §2.1): an `out_len_ptr` holds the capacity of
//! the output buffer on the way in and the written length on the way out; a value longer
//! than the capacity makes the host abort the call. Every wrapper here follows that rule.
//!
//! There is no heap allocator (Rust 1.63 has no stable `alloc_error_handler` for `no_std`).
//! Variable-size data lives in a bump arena above `__heap_base` that is never freed: the
//! host runs every call in a fresh instance, and each entry point ends with `seal_return`
//! or a trap, so the arena only has to serve one call. (A `static` array would not do: with
//! an imported memory, wasm-ld must emit zero-initialised statics as data, and a 40 KiB
//! buffer would be 40 KiB of zeros in every `.wasm`.)

use crate::scale::Writer;
use crate::sys::{seal0, seal1, seal2};
use crate::{AccountId, Balance, Hash};

/// ink! 4 reads call input into a 16 KiB static buffer; larger inputs fail there too.
pub const INPUT_CAPACITY: usize = 16 * 1024;
/// Host return code for "success" (ReturnErrorCode, HOST-ABI.md §1.6).
pub const SUCCESS: u32 = 0;
/// `seal1.get_storage` return code when the key is absent.
const KEY_NOT_FOUND: u32 = 3;
/// `seal1.call` / `seal1.instantiate` code when the callee reverted (output still valid).
pub const CALLEE_REVERTED: u32 = 2;
/// u32::MAX as a return value means "there was no value" (storage size queries).
const SENTINEL: u32 = u32::MAX;
/// pallet-contracts schedule `event_topics` (and ink!'s `MAX_EVENT_TOPICS`).
pub const MAX_EVENT_TOPICS: usize = 4;
const WASM_PAGE: usize = 64 * 1024;

extern "C" {
    /// End of the linker's static data and stack: free memory starts here.
    static __heap_base: u8;
}

static mut ARENA_USED: usize = 0;

/// Hands out `len` bytes (not zeroed) that live until the call ends, growing the memory
/// when the two initial pages are used up; traps when the module's maximum is reached.
pub fn alloc(len: usize) -> &'static mut [u8] {
    // SAFETY: wasm32 contracts are single-threaded and each region is handed out once, so
    // no two live `&mut` ever overlap; the region lies inside memory (grown if needed).
    unsafe {
        let start = core::ptr::addr_of!(__heap_base) as usize + ARENA_USED;
        let end = match start.checked_add(len) {
            Some(end) => end,
            None => trap(),
        };
        let have = core::arch::wasm32::memory_size(0) * WASM_PAGE;
        if end > have {
            let pages = (end - have + WASM_PAGE - 1) / WASM_PAGE;
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                trap_with("phat_sdk: out of memory");
            }
        }
        ARENA_USED = end - core::ptr::addr_of!(__heap_base) as usize;
        core::slice::from_raw_parts_mut(start as *mut u8, len)
    }
}

// --- ending a call -------------------------------------------------------------------------

/// Ends the call with `flags` (bit 0 = REVERT) and `data` as output.
pub fn return_value(flags: u32, data: &[u8]) -> ! {
    unsafe { seal0::seal_return(flags, data.as_ptr(), data.len() as u32) }
}

/// Aborts the call: the host reports `ContractTrapped` and rolls back all its changes.
pub fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

/// Writes `msg` to the debug buffer (like ink!'s `ink-debug` panic message), then traps.
pub fn trap_with(msg: &str) -> ! {
    debug(msg);
    trap()
}

/// Appends UTF-8 text to the call's debug buffer. A host without debug output returns
/// `LoggingDisabled`; the message is simply lost then, as in ink!.
pub fn debug(msg: &str) {
    unsafe {
        seal0::debug_message(msg.as_ptr(), msg.len() as u32);
    }
}

// --- call context --------------------------------------------------------------------------

/// The call's input: 4-byte selector ‖ SCALE arguments.
pub fn input() -> &'static [u8] {
    let buf = alloc(INPUT_CAPACITY);
    let mut len = buf.len() as u32;
    unsafe { seal0::input(buf.as_mut_ptr(), &mut len) };
    &buf[..len as usize]
}

pub fn caller() -> AccountId {
    let mut out = [0u8; 32];
    let mut len = out.len() as u32;
    unsafe { seal0::caller(out.as_mut_ptr(), &mut len) };
    out
}

pub fn address() -> AccountId {
    let mut out = [0u8; 32];
    let mut len = out.len() as u32;
    unsafe { seal0::address(out.as_mut_ptr(), &mut len) };
    out
}

pub fn value_transferred() -> Balance {
    let mut out = [0u8; 16];
    let mut len = out.len() as u32;
    unsafe { seal0::value_transferred(out.as_mut_ptr(), &mut len) };
    u128::from_le_bytes(out)
}

pub fn blake2_256(data: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    unsafe { seal0::hash_blake2_256(data.as_ptr(), data.len() as u32, out.as_mut_ptr()) };
    out
}

// --- storage (variable-length keys, seal1/seal2) ------------------------------------------

/// Reads the value at `key` into `out`; `None` when the key is absent. A value longer than
/// `out` aborts the call (host rule), so size `out` for the largest value you store.
pub fn get_storage<'b>(key: &[u8], out: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut len = out.len() as u32;
    let code =
        unsafe { seal1::get_storage(key.as_ptr(), key.len() as u32, out.as_mut_ptr(), &mut len) };
    match code {
        SUCCESS => Some(&out[..len as usize]),
        KEY_NOT_FOUND => None,
        _ => trap(),
    }
}

pub fn set_storage(key: &[u8], value: &[u8]) {
    unsafe {
        seal2::set_storage(key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32);
    }
}

/// Size of the value at `key`, or `None` when absent.
pub fn contains_storage(key: &[u8]) -> Option<u32> {
    match unsafe { seal1::contains_storage(key.as_ptr(), key.len() as u32) } {
        SENTINEL => None,
        size => Some(size),
    }
}

/// Removes `key`; returns the size of the removed value, or `None` when there was none.
pub fn clear_storage(key: &[u8]) -> Option<u32> {
    match unsafe { seal1::clear_storage(key.as_ptr(), key.len() as u32) } {
        SENTINEL => None,
        size => Some(size),
    }
}

// --- events --------------------------------------------------------------------------------

/// Deposits an event: `topics` go to the host as SCALE `Vec<[u8; 32]>`.
pub fn deposit_event(topics: &[Hash], data: &[u8]) {
    if topics.len() > MAX_EVENT_TOPICS {
        trap_with("phat_sdk: too many event topics");
    }
    let mut buf = [0u8; 1 + 32 * MAX_EVENT_TOPICS];
    let mut w = Writer::new(&mut buf);
    w.compact_u32(topics.len() as u32);
    for topic in topics {
        w.put(topic);
    }
    let encoded = w.as_slice();
    unsafe {
        seal0::deposit_event(
            encoded.as_ptr(),
            encoded.len() as u32,
            data.as_ptr(),
            data.len() as u32,
        )
    }
}

// --- calling other contracts ---------------------------------------------------------------

/// How a sub-call ended: the host return code (0 success, 1 callee trapped, 2 callee
/// reverted, 7 code not found, 8 not callable, …) and the callee's output, which is empty
/// when it trapped.
pub struct SubCall<'b> {
    pub code: u32,
    pub output: &'b [u8],
}

/// `seal1.call` with no flags (no re-entry, like ink!'s default), all remaining gas
/// (`gas = 0`) and `value` transferred. The output lands in `out`.
pub fn call<'b>(
    callee: &AccountId,
    value: Balance,
    input: &[u8],
    out: &'b mut [u8],
) -> SubCall<'b> {
    let value = value.to_le_bytes();
    let mut len = out.len() as u32;
    let code = unsafe {
        seal1::call(
            0,
            callee.as_ptr(),
            0,
            value.as_ptr(),
            input.as_ptr(),
            input.len() as u32,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    // The host writes no output when the callee trapped; `len` then still holds capacity.
    let len = if code == SUCCESS || code == CALLEE_REVERTED { len as usize } else { 0 };
    SubCall { code, output: &out[..len] }
}

/// Result of `instantiate`: the host code, the new address (valid only on success) and the
/// constructor's output.
pub struct Instantiated<'b> {
    pub code: u32,
    pub address: AccountId,
    pub output: &'b [u8],
}

/// `seal1.instantiate` of `code_hash` with constructor `input`, all remaining gas and
/// `value`. The address is derived by the host from deployer, code hash and `salt`.
pub fn instantiate<'b>(
    code_hash: &Hash,
    value: Balance,
    input: &[u8],
    salt: &[u8],
    out: &'b mut [u8],
) -> Instantiated<'b> {
    let value = value.to_le_bytes();
    let mut address = [0u8; 32];
    let mut address_len = address.len() as u32;
    let mut len = out.len() as u32;
    let code = unsafe {
        seal1::instantiate(
            code_hash.as_ptr(),
            0,
            value.as_ptr(),
            input.as_ptr(),
            input.len() as u32,
            address.as_mut_ptr(),
            &mut address_len,
            out.as_mut_ptr(),
            &mut len,
            salt.as_ptr(),
            salt.len() as u32,
        )
    };
    let len = if code == SUCCESS || code == CALLEE_REVERTED { len as usize } else { 0 };
    Instantiated { code, address, output: &out[..len] }
}
