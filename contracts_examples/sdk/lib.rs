//! `phat_sdk` — a tiny `no_std` SDK for writing contracts that speak the ink! 4 ABI on
//! pallet-contracts' seal host interface, without ink! and without crates.io.
//!
//! It exists so that this repository can build its own example contracts (and so test its
//! runtime against real compiled Wasm) with nothing but Debian's rustc and wasm-ld. It is
//! deliberately small: no allocator, no macros, explicit dispatch in each contract.
//!
//! - [`sys`]: the raw imports (`seal0`/`seal1`/`seal2`, ink! 4 names and signatures);
//! - [`env`]: safe wrappers, the per-call arena, sub-calls and instantiation;
//! - [`scale`]: the SCALE subset the examples use;
//! - [`ink`]: ink! 4 conventions — selectors, `MessageResult`, `LangError`, storage root
//!   and `Mapping` keys, event topics;
//! - [`pink`]: Phala's pink chain extension (HTTP, keys and signatures, cache, logs, the
//!   cluster environment) and the `PinkEvent` side channel.
//!
//! Compiled as an rlib and linked into each contract's staticlib (see `../build.py`).

#![no_std]

pub mod env;
pub mod ink;
pub mod pink;
pub mod scale;
pub mod sys;

/// 32-byte account id (SCALE: the raw bytes).
pub type AccountId = [u8; 32];
/// 32-byte hash, e.g. a code hash (SCALE: the raw bytes).
pub type Hash = [u8; 32];
/// Balances are `u128` in the default ink! / pink environment.
pub type Balance = u128;

/// Any Rust panic (overflow, failed bounds check, `unwrap`) becomes a wasm trap, which the
/// host reports as `ContractTrapped` and rolls back. No message is formatted: the
/// formatting machinery would more than double the size of these contracts; call sites that
/// want to explain themselves use [`env::trap_with`].
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
