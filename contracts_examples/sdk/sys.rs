//! Raw host imports: the pallet-contracts "seal" ABI under the exact module/name pairs that
//! ink! 4 emits (docs/HOST-ABI.md §1.3). Nothing here is safe to call directly; `env.rs`
//! wraps every function with the buffer conventions of §2.1.
//!
//! Every pointer and length is a wasm `i32`; gas is the only `i64`. Only the functions a
//! contract actually calls end up as imports in its `.wasm` (the linker drops the rest).
//!
//! Each import module lives in its own Rust module because contracts export a function
//! named `call` themselves and `seal1.call` would otherwise clash with it.

pub mod seal0 {
    #[link(wasm_import_module = "seal0")]
    extern "C" {
        pub fn input(buf_ptr: *mut u8, buf_len_ptr: *mut u32);
        /// Ends the current call: never returns (the host raises a "Return" trap).
        pub fn seal_return(flags: u32, data_ptr: *const u8, data_len: u32) -> !;
        pub fn caller(out_ptr: *mut u8, out_len_ptr: *mut u32);
        pub fn address(out_ptr: *mut u8, out_len_ptr: *mut u32);
        pub fn value_transferred(out_ptr: *mut u8, out_len_ptr: *mut u32);
        pub fn deposit_event(
            topics_ptr: *const u8,
            topics_len: u32,
            data_ptr: *const u8,
            data_len: u32,
        );
        pub fn hash_blake2_256(input_ptr: *const u8, input_len: u32, output_ptr: *mut u8);
        pub fn debug_message(str_ptr: *const u8, str_len: u32) -> u32;
    }
}

pub mod seal1 {
    #[link(wasm_import_module = "seal1")]
    extern "C" {
        pub fn get_storage(
            key_ptr: *const u8,
            key_len: u32,
            out_ptr: *mut u8,
            out_len_ptr: *mut u32,
        ) -> u32;
        pub fn contains_storage(key_ptr: *const u8, key_len: u32) -> u32;
        pub fn clear_storage(key_ptr: *const u8, key_len: u32) -> u32;
        pub fn call(
            flags: u32,
            callee_ptr: *const u8,
            gas: u64,
            value_ptr: *const u8,
            input_ptr: *const u8,
            input_len: u32,
            out_ptr: *mut u8,
            out_len_ptr: *mut u32,
        ) -> u32;
        pub fn instantiate(
            code_hash_ptr: *const u8,
            gas: u64,
            value_ptr: *const u8,
            input_ptr: *const u8,
            input_len: u32,
            address_ptr: *mut u8,
            address_len_ptr: *mut u32,
            out_ptr: *mut u8,
            out_len_ptr: *mut u32,
            salt_ptr: *const u8,
            salt_len: u32,
        ) -> u32;
    }
}

pub mod seal2 {
    #[link(wasm_import_module = "seal2")]
    extern "C" {
        pub fn set_storage(
            key_ptr: *const u8,
            key_len: u32,
            value_ptr: *const u8,
            value_len: u32,
        ) -> u32;
    }
}
