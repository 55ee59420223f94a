//! Typed bindings of Phala's *pink* chain extension (HOST-ABI.md §3) and of the few seal
//! functions pink contracts use beyond what `env.rs` wraps.
//!
//! Calling convention (§3.1): `seal0.call_chain_extension(func_id, input_ptr, input_len,
//! output_ptr, output_len_ptr) -> status`. `func_id` is the bare function number (pink's
//! extension id is 0); the input is the SCALE encoding of the argument tuple (nothing for no
//! argument, the bare value for one); the output follows the in/out length rule of §2.1 and
//! is the SCALE encoding of the return type. The status is always 0 except for the two
//! `handle_status` functions (`cache_set`, `batch_http_request`), where a non-zero status
//! replaces the output and encodes the error.
//!
//! Failure policy, as pink's ink! bindings: a host-side failure (invalid URL, malformed key,
//! no cluster key …) aborts the whole contract call before we ever see it; an output we
//! cannot decode, or a non-zero status from a function that has none, traps here with a
//! reason in the debug buffer.
//!
//! Memory: outputs of variable size land in the per-call arena (`env::alloc`), sized like
//! ink! 4's 16 KiB static buffer for the big ones (HTTP bodies, cache values) and tightly
//! for the rest, and are returned as borrowed slices — there is no allocator.
//!
//! Every function is `#[inline]`: then it is compiled only into the contracts that use it.
//! Otherwise adding this module to the `phat_sdk` rlib would change the optimiser's
//! decisions about `env.rs` and so the bytes of contracts that never touch pink (their
//! committed outputs are checked by `build.py --check`).
//!
//! Secrets: [`derive_sr25519_key`] returns a [`Sr25519Secret`], which deliberately does not
//! implement `Encode`, so it cannot be written to storage, put in an event or returned from a
//! message by accident; it can only be handed back to the signing functions.

use crate::env;
use crate::scale::{Bytes, Decode, Encode, Reader, Writer};
use crate::{AccountId, Balance, Hash};

// --- raw imports ---------------------------------------------------------------------------

/// The imports live here rather than in `sys.rs` so that the core SDK stays pink-agnostic;
/// as everywhere, only what a contract calls is linked into its `.wasm`.
mod sys {
    #[link(wasm_import_module = "seal0")]
    extern "C" {
        pub fn call_chain_extension(
            func_id: u32,
            input_ptr: *const u8,
            input_len: u32,
            output_ptr: *mut u8,
            output_len_ptr: *mut u32,
        ) -> u32;
        pub fn hash_keccak_256(input_ptr: *const u8, input_len: u32, output_ptr: *mut u8);
        pub fn ecdsa_to_eth_address(key_ptr: *const u8, out_ptr: *mut u8) -> u32;
        pub fn block_number(out_ptr: *mut u8, out_len_ptr: *mut u32);
        pub fn code_hash(account_ptr: *const u8, out_ptr: *mut u8, out_len_ptr: *mut u32) -> u32;
        pub fn own_code_hash(out_ptr: *mut u8, out_len_ptr: *mut u32);
        pub fn set_code_hash(code_hash_ptr: *const u8) -> u32;
    }
}

/// Function numbers of pink's extension (`#[ink(extension = N)]` in `pink::chain_extension`).
pub mod func {
    pub const HTTP_REQUEST: u32 = 1;
    pub const SIGN: u32 = 2;
    pub const VERIFY: u32 = 3;
    pub const DERIVE_SR25519_KEY: u32 = 4;
    pub const GET_PUBLIC_KEY: u32 = 5;
    pub const CACHE_SET: u32 = 6;
    pub const CACHE_SET_EXPIRATION: u32 = 7;
    pub const CACHE_GET: u32 = 8;
    pub const CACHE_REMOVE: u32 = 9;
    pub const LOG: u32 = 10;
    pub const GETRANDOM: u32 = 11;
    pub const IS_IN_TRANSACTION: u32 = 12;
    pub const ECDSA_SIGN_PREHASHED: u32 = 13;
    pub const ECDSA_VERIFY_PREHASHED: u32 = 14;
    pub const SYSTEM_CONTRACT_ID: u32 = 15;
    pub const BALANCE_OF: u32 = 16;
    pub const WORKER_PUBKEY: u32 = 17;
    pub const UNTRUSTED_MILLIS_SINCE_UNIX_EPOCH: u32 = 18;
    pub const CODE_EXISTS: u32 = 19;
    pub const IMPORT_LATEST_SYSTEM_CODE: u32 = 20;
    pub const RUNTIME_VERSION: u32 = 21;
    pub const BATCH_HTTP_REQUEST: u32 = 22;
    pub const CURRENT_EVENT_CHAIN_HEAD: u32 = 23;
}

/// ink! 4 receives chain-extension output in what is left of its 16 KiB static buffer; we
/// give the functions with unbounded output (HTTP, cache values) the same room.
pub const LARGE_OUTPUT: usize = 16 * 1024;
/// Room for the compact length prefix of a `Vec`/`String` argument.
const LEN_PREFIX: usize = 5;

// --- the call itself -----------------------------------------------------------------------

/// Calls function `func` with SCALE `input`; returns the status and the output in `out`.
#[inline]
pub fn call_raw<'b>(func: u32, input: &[u8], out: &'b mut [u8]) -> (u32, &'b [u8]) {
    let mut len = out.len() as u32;
    let status = unsafe {
        sys::call_chain_extension(
            func,
            input.as_ptr(),
            input.len() as u32,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    (status, &out[..len as usize])
}

/// Calls a function without `handle_status`: any status but 0 is a protocol violation.
#[inline]
fn call<'b>(func: u32, input: &[u8], out: &'b mut [u8]) -> &'b [u8] {
    match call_raw(func, input, out) {
        (0, output) => output,
        _ => env::trap_with("pink: unexpected chain-extension status"),
    }
}

/// Decodes the whole output as `T` (nothing may be left over), or traps.
#[inline]
fn decode<'a, T: Decode<'a>>(output: &'a [u8]) -> T {
    let mut r = Reader::new(output);
    match r.read::<T>() {
        Some(value) if r.remaining().is_empty() => value,
        _ => env::trap_with("pink: undecodable chain-extension output"),
    }
}

/// SCALE-encodes the arguments into an arena buffer of `capacity` bytes.
#[inline]
fn args(capacity: usize, f: impl FnOnce(&mut Writer)) -> &'static [u8] {
    let mut w = Writer::new(env::alloc(capacity));
    f(&mut w);
    w.finish()
}

/// Calls a function whose output is a small fixed-size value and decodes it.
#[inline]
fn call_fixed<T: for<'x> Decode<'x>>(func: u32, input: &[u8]) -> T {
    let mut out = [0u8; 72];
    decode(call(func, input, &mut out))
}

// --- HTTP (ids 1 and 22, queries only) -----------------------------------------------------

/// pink's `HttpRequest { url, method, headers, body }` — url first. `url`, `method` and the
/// header strings are UTF-8 text (SCALE `String`), kept as bytes because that is what call
/// input decodes to.
pub struct HttpRequest<'a> {
    pub url: &'a [u8],
    pub method: &'a [u8],
    pub headers: &'a [(&'a [u8], &'a [u8])],
    pub body: &'a [u8],
}

impl<'a> HttpRequest<'a> {
    /// A GET of `url` without headers or body.
    #[inline]
    pub fn get(url: &'a [u8]) -> Self {
        HttpRequest { url, method: b"GET", headers: &[], body: &[] }
    }

    #[inline]

    fn encoded_len(&self) -> usize {
        let headers: usize =
            self.headers.iter().map(|(k, v)| 2 * LEN_PREFIX + k.len() + v.len()).sum();
        4 * LEN_PREFIX + self.url.len() + self.method.len() + headers + self.body.len()
    }
}

impl Encode for HttpRequest<'_> {
    #[inline]
    fn encode_to(&self, w: &mut Writer) {
        w.put(&Bytes(self.url)).put(&Bytes(self.method));
        w.compact_u32(self.headers.len() as u32);
        for (name, value) in self.headers {
            w.put(&Bytes(name)).put(&Bytes(value));
        }
        w.put(&Bytes(self.body));
    }
}

/// pink's `HttpResponse { status_code, reason_phrase, headers, body }`, borrowed from the
/// output buffer.
pub struct HttpResponse<'a> {
    pub status_code: u16,
    pub reason_phrase: &'a [u8],
    pub headers: Headers<'a>,
    pub body: &'a [u8],
}

impl<'a> Decode<'a> for HttpResponse<'a> {
    #[inline]
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        Some(HttpResponse {
            status_code: r.read()?,
            reason_phrase: r.read()?,
            headers: r.read()?,
            body: r.read()?,
        })
    }
}

/// A SCALE `Vec<(String, String)>` kept encoded; iterate to read the pairs.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    count: u32,
    encoded: &'a [u8],
}

impl<'a> Headers<'a> {
    #[inline]
    pub fn len(&self) -> u32 {
        self.count
    }

    #[inline]

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    #[inline]

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut r = Reader::new(self.encoded);
        // Checked when decoded, so every pair is there.
        (0..self.count).filter_map(move |_| Some((r.read()?, r.read()?)))
    }
}

impl<'a> Decode<'a> for Headers<'a> {
    #[inline]
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        let count = r.compact_u32()?;
        let start = r.remaining();
        for _ in 0..count {
            r.read::<&[u8]>()?;
            r.read::<&[u8]>()?;
        }
        let used = start.len() - r.remaining().len();
        Some(Headers { count, encoded: &start[..used] })
    }
}

/// pink's `HttpRequestError` (SCALE: the variant index; as a status code: index + 1).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HttpRequestError {
    InvalidUrl = 0,
    InvalidMethod = 1,
    InvalidHeaderName = 2,
    InvalidHeaderValue = 3,
    FailedToCreateClient = 4,
    Timeout = 5,
    NotAllowed = 6,
    TooManyRequests = 7,
    NetworkError = 8,
    ResponseTooLarge = 9,
    TooManyHeaders = 10,
}

impl HttpRequestError {
    #[inline]
    pub fn from_index(index: u32) -> Option<Self> {
        use HttpRequestError::*;
        const ALL: [HttpRequestError; 11] = [
            InvalidUrl,
            InvalidMethod,
            InvalidHeaderName,
            InvalidHeaderValue,
            FailedToCreateClient,
            Timeout,
            NotAllowed,
            TooManyRequests,
            NetworkError,
            ResponseTooLarge,
            TooManyHeaders,
        ];
        ALL.get(index as usize).copied()
    }
}

impl<'a> Decode<'a> for HttpRequestError {
    #[inline]
    fn decode(r: &mut Reader<'a>) -> Option<Self> {
        Self::from_index(u32::from(r.read::<u8>()?))
    }
}

/// `http_request` (id 1): one request, answered within the query's time budget. In a
/// transaction pink answers 523 without sending anything.
#[inline]
pub fn http_request(request: &HttpRequest) -> HttpResponse<'static> {
    let input = args(request.encoded_len(), |w| {
        w.put(request);
    });
    decode(call(func::HTTP_REQUEST, input, env::alloc(LARGE_OUTPUT)))
}

/// The per-request results of [`batch_http_request`], decoded on iteration.
pub struct BatchResponses {
    count: u32,
    encoded: &'static [u8],
}

impl BatchResponses {
    #[inline]
    pub fn len(&self) -> u32 {
        self.count
    }

    #[inline]

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    #[inline]

    pub fn iter(&self) -> impl Iterator<Item = Result<HttpResponse<'static>, HttpRequestError>> {
        let mut r = Reader::new(self.encoded);
        (0..self.count).filter_map(move |_| r.read())
    }
}

/// `batch_http_request` (id 22, `handle_status`): up to 5 requests in parallel, each bounded
/// by `timeout_ms`. Status 0 carries `Vec<Result<HttpResponse, HttpRequestError>>`; status
/// k > 0 is the whole batch failing with the error of index k − 1.
#[inline]
pub fn batch_http_request(
    requests: &[HttpRequest],
    timeout_ms: u64,
) -> Result<BatchResponses, HttpRequestError> {
    let size = LEN_PREFIX + 8 + requests.iter().map(HttpRequest::encoded_len).sum::<usize>();
    let input = args(size, |w| {
        w.compact_u32(requests.len() as u32);
        for request in requests {
            w.put(request);
        }
        w.put(&timeout_ms);
    });
    match call_raw(func::BATCH_HTTP_REQUEST, input, env::alloc(LARGE_OUTPUT)) {
        (0, output) => {
            let mut r = Reader::new(output);
            let count = r.compact_u32().unwrap_or_else(|| trap_undecodable());
            // Validate every element now, so iteration cannot silently stop short.
            let mut check = Reader::new(r.remaining());
            for _ in 0..count {
                if check.read::<Result<HttpResponse, HttpRequestError>>().is_none() {
                    trap_undecodable();
                }
            }
            if !check.remaining().is_empty() {
                trap_undecodable();
            }
            Ok(BatchResponses { count, encoded: r.remaining() })
        }
        (status, _) => match HttpRequestError::from_index(status - 1) {
            Some(error) => Err(error),
            None => env::trap_with("pink: unknown batch_http_request status"),
        },
    }
}

#[inline]

fn trap_undecodable() -> ! {
    env::trap_with("pink: undecodable chain-extension output")
}

// --- keys and signatures (ids 2–5, 13, 14) -------------------------------------------------

/// pink's `SigType` (SCALE: the variant index).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SigType {
    Ed25519 = 0,
    Sr25519 = 1,
    Ecdsa = 2,
}

impl Encode for SigType {
    #[inline]
    fn encode_to(&self, w: &mut Writer) {
        w.put(&(*self as u8));
    }
}

/// A 64-byte sr25519 secret (scalar ‖ nonce) from [`derive_sr25519_key`].
///
/// Not `Encode`, not `Copy`: it can be passed to the signing functions, never returned,
/// stored or emitted by mistake. Derive it again when needed instead of keeping it.
pub struct Sr25519Secret([u8; 64]);

impl Sr25519Secret {
    /// The full secret, as `sign(SigType::Sr25519, …)` and `get_public_key` take it.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The first 32 bytes (the sr25519 scalar) used as a secp256k1 secret key, as pink
    /// contracts commonly do (`derive_sr25519_key(salt)[..32]`). A reduced ristretto scalar
    /// is far below the secp256k1 group order, so it is a valid key.
    #[inline]
    pub fn ecdsa_secret(&self) -> &[u8] {
        &self.0[..32]
    }
}

/// `derive_sr25519_key` (id 4): a secret derived from the cluster key, this contract's
/// address and `salt` — the same on every worker of the cluster, in queries and
/// transactions alike.
#[inline]
pub fn derive_sr25519_key(salt: &[u8]) -> Sr25519Secret {
    let input = args(LEN_PREFIX + salt.len(), |w| {
        w.put(&Bytes(salt));
    });
    let mut out = [0u8; 2 + 64];
    let key: &[u8] = decode(call(func::DERIVE_SR25519_KEY, input, &mut out));
    let mut secret = [0u8; 64];
    if key.len() != secret.len() {
        env::trap_with("pink: derive_sr25519_key did not return 64 bytes");
    }
    secret.copy_from_slice(key);
    Sr25519Secret(secret)
}

/// `get_public_key` (id 5): 32 bytes for sr25519/ed25519, 33 (compressed) for ecdsa.
#[inline]
pub fn get_public_key(sigtype: SigType, key: &[u8]) -> &'static [u8] {
    let input = args(1 + LEN_PREFIX + key.len(), |w| {
        w.put(&sigtype).put(&Bytes(key));
    });
    decode(call(func::GET_PUBLIC_KEY, input, env::alloc(1 + 33)))
}

/// The sr25519 public key of `key`.
#[inline]
pub fn sr25519_public_key(key: &Sr25519Secret) -> [u8; 32] {
    fixed(get_public_key(SigType::Sr25519, key.as_bytes()))
}

/// The compressed secp256k1 public key of `key.ecdsa_secret()`.
#[inline]
pub fn ecdsa_public_key(key: &Sr25519Secret) -> [u8; 33] {
    fixed(get_public_key(SigType::Ecdsa, key.ecdsa_secret()))
}

#[inline]

fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    if bytes.len() != N {
        env::trap_with("pink: unexpected key length");
    }
    out.copy_from_slice(bytes);
    out
}

/// `sign` (id 2): 64-byte signature (sr25519/ed25519) or 65 bytes (ecdsa over
/// blake2_256(message)). Sr25519 signing is not deterministic, so in a transaction pink
/// returns an empty signature.
#[inline]
pub fn sign(sigtype: SigType, key: &[u8], message: &[u8]) -> &'static [u8] {
    let input = args(1 + 2 * LEN_PREFIX + key.len() + message.len(), |w| {
        w.put(&sigtype).put(&Bytes(key)).put(&Bytes(message));
    });
    // compact(65) takes two bytes.
    decode(call(func::SIGN, input, env::alloc(2 + 65)))
}

/// `verify` (id 3). A public key or signature of the wrong length fails the whole call in
/// pink — check lengths first when they come from outside.
#[inline]
pub fn verify(sigtype: SigType, pubkey: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let size = 1 + 3 * LEN_PREFIX + pubkey.len() + message.len() + signature.len();
    let input = args(size, |w| {
        w.put(&sigtype).put(&Bytes(pubkey)).put(&Bytes(message)).put(&Bytes(signature));
    });
    call_fixed(func::VERIFY, input)
}

/// `ecdsa_sign_prehashed` (id 13): recoverable secp256k1 signature `r ‖ s ‖ v` (v ∈ {0, 1})
/// of the 32-byte `message_hash`, with the 32-byte secret `key`.
#[inline]
pub fn ecdsa_sign_prehashed(key: &[u8], message_hash: &Hash) -> [u8; 65] {
    let input = args(LEN_PREFIX + key.len() + 32, |w| {
        w.put(&Bytes(key)).put(message_hash);
    });
    let mut out = [0u8; 65];
    decode(call(func::ECDSA_SIGN_PREHASHED, input, &mut out))
}

/// `ecdsa_verify_prehashed` (id 14).
#[inline]
pub fn ecdsa_verify_prehashed(
    signature: &[u8; 65],
    message_hash: &Hash,
    pubkey: &[u8; 33],
) -> bool {
    let mut buf = [0u8; 65 + 32 + 33];
    let mut w = Writer::new(&mut buf);
    w.put(signature).put(message_hash).put(pubkey);
    call_fixed(func::ECDSA_VERIFY_PREHASHED, w.as_slice())
}

// --- local cache (ids 6–9) -----------------------------------------------------------------

/// The cache is full for this contract (`cache_set` status 1).
pub struct StorageQuotaExceeded;

/// `cache_set` (id 6, `handle_status`). In a transaction pink emits `CacheOp::Set` instead
/// and answers `Ok`.
#[inline]
pub fn cache_set(key: &[u8], value: &[u8]) -> Result<(), StorageQuotaExceeded> {
    let input = args(2 * LEN_PREFIX + key.len() + value.len(), |w| {
        w.put(&Bytes(key)).put(&Bytes(value));
    });
    let mut out = [0u8; 0];
    match call_raw(func::CACHE_SET, input, &mut out) {
        (0, _) => Ok(()),
        (1, _) => Err(StorageQuotaExceeded),
        _ => env::trap_with("pink: unknown cache_set status"),
    }
}

/// `cache_set_expiration` (id 7): the entry expires `seconds` from now (0 removes it).
#[inline]
pub fn cache_set_expiration(key: &[u8], seconds: u64) {
    let input = args(LEN_PREFIX + key.len() + 8, |w| {
        w.put(&Bytes(key)).put(&seconds);
    });
    call_fixed::<()>(func::CACHE_SET_EXPIRATION, input)
}

/// `cache_get` (id 8): always `None` in a transaction.
#[inline]
pub fn cache_get(key: &[u8]) -> Option<&'static [u8]> {
    decode(call(func::CACHE_GET, key_arg(key), env::alloc(LARGE_OUTPUT)))
}

/// `cache_remove` (id 9): the removed value; always `None` in a transaction (which emits
/// `CacheOp::Remove` instead).
#[inline]
pub fn cache_remove(key: &[u8]) -> Option<&'static [u8]> {
    decode(call(func::CACHE_REMOVE, key_arg(key), env::alloc(LARGE_OUTPUT)))
}

#[inline]

fn key_arg(key: &[u8]) -> &'static [u8] {
    args(LEN_PREFIX + key.len(), |w| {
        w.put(&Bytes(key));
    })
}

// --- logging and the environment (ids 10–12, 15–21, 23) ------------------------------------

/// pink's log levels (`log` id 10; anything else is logged as Error).
#[derive(Clone, Copy)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// `log` (id 10): to the worker's log and the cluster's log server.
#[inline]
pub fn log(level: LogLevel, message: &str) {
    let input = args(1 + LEN_PREFIX + message.len(), |w| {
        w.put(&(level as u8)).put(&Bytes(message.as_bytes()));
    });
    call_fixed::<()>(func::LOG, input)
}

/// `getrandom` (id 11): `length` random bytes in a query, none in a transaction.
#[inline]
pub fn getrandom(length: u8) -> &'static [u8] {
    decode(call(func::GETRANDOM, &[length], env::alloc(2 + 255)))
}

/// `is_in_transaction` (id 12): false only in a query.
#[inline]
pub fn is_in_transaction() -> bool {
    call_fixed(func::IS_IN_TRANSACTION, &[])
}

/// `system_contract_id` (id 15): fails the call when the cluster has none.
#[inline]
pub fn system_contract_id() -> AccountId {
    call_fixed(func::SYSTEM_CONTRACT_ID, &[])
}

/// `balance_of` (id 16): (total, free) balance of `account`.
#[inline]
pub fn balance_of(account: &AccountId) -> (Balance, Balance) {
    call_fixed(func::BALANCE_OF, account)
}

/// `worker_pubkey` (id 17): the worker's identity key in a query, zeros in a transaction.
#[inline]
pub fn worker_pubkey() -> [u8; 32] {
    call_fixed(func::WORKER_PUBKEY, &[])
}

/// `untrusted_millis_since_unix_epoch` (id 18): the worker's clock in a query, 0 in a
/// transaction.
#[inline]
pub fn untrusted_millis_since_unix_epoch() -> u64 {
    call_fixed(func::UNTRUSTED_MILLIS_SINCE_UNIX_EPOCH, &[])
}

/// `code_exists` (id 19): whether ink! (`sidevm = false`) or SideVM code is in the cluster.
#[inline]
pub fn code_exists(code_hash: &Hash, sidevm: bool) -> bool {
    let mut buf = [0u8; 33];
    let mut w = Writer::new(&mut buf);
    w.put(code_hash).put(&sidevm);
    call_fixed(func::CODE_EXISTS, w.as_slice())
}

/// `import_latest_system_code` (id 20, system contract only): uploads the chain's system
/// code paid by `payer`; its code hash, or `None` when there is none.
#[inline]
pub fn import_latest_system_code(payer: &AccountId) -> Option<Hash> {
    call_fixed(func::IMPORT_LATEST_SYSTEM_CODE, payer)
}

/// `runtime_version` (id 21): (major, minor) of the pink runtime.
#[inline]
pub fn runtime_version() -> (u32, u32) {
    call_fixed(func::RUNTIME_VERSION, &[])
}

/// `current_event_chain_head` (id 23): (next event block number, last event block hash).
#[inline]
pub fn current_event_chain_head() -> (u64, Hash) {
    call_fixed(func::CURRENT_EVENT_CHAIN_HEAD, &[])
}

// --- the cluster's system contract ---------------------------------------------------------

/// Calls into the system contract the way pink's generated `SystemRef` does: address from
/// `system_contract_id`, then a plain `seal1.call` with the `System` trait's selector
/// (namespace `pink_system`), decoding ink!'s `MessageResult`. Like ink!'s `invoke()`, a
/// failed call or an `Err(LangError)` traps.
pub mod system {
    use super::system_contract_id;
    use crate::env;
    use crate::ink::Selector;
    use crate::scale::{Bytes, Reader, Writer};
    use crate::AccountId;

    /// blake2_256("pink_system::System::get_driver")[..4].
    pub const GET_DRIVER: Selector = [0x27, 0x40, 0xcf, 0x0a];
    /// blake2_256("pink_system::System::set_hook")[..4].
    pub const SET_HOOK: Selector = [0x35, 0x2c, 0x6b, 0x5c];
    /// blake2_256("pink_system::System::total_balance_of")[..4].
    pub const TOTAL_BALANCE_OF: Selector = [0x5a, 0x98, 0xf2, 0x26];
    /// `HookPoint::OnBlockEnd`, the only hook point.
    pub const ON_BLOCK_END: u8 = 0;

    /// Calls the system contract with `input`; the message's value after `MessageResult`'s
    /// `Ok` byte. A message answering `Err` reverts, and its value still comes back here.
    /// A failed call or `Err(LangError)` traps, naming `what`.
    #[inline]
    fn invoke<'b>(what: &str, input: &[u8], out: &'b mut [u8]) -> &'b [u8] {
        let call = env::call(&system_contract_id(), 0, input, out);
        match call.output.split_first() {
            Some((0, value)) if call.code == env::SUCCESS || call.code == env::CALLEE_REVERTED => {
                value
            }
            _ => {
                env::debug(what);
                env::trap_with(": the call into the system contract failed")
            }
        }
    }

    /// `System::set_hook(OnBlockEnd, contract, selector, gas_limit) -> Result<(), Error>`:
    /// from the end of the next block on, the runtime calls `contract` with input
    /// `selector.to_be_bytes()` at the end of every block. Only a system administrator may
    /// set hooks; `Err` carries pink's `system::Error` variant index (0 = PermisionDenied).
    #[inline]
    pub fn set_hook(contract: &AccountId, selector: u32, gas_limit: u64) -> Result<(), u8> {
        let mut input = [0u8; 4 + 1 + 32 + 4 + 8];
        let mut w = Writer::new(&mut input);
        w.bytes(&SET_HOOK).put(&ON_BLOCK_END).put(contract).put(&selector).put(&gas_limit);
        let mut out = [0u8; 1 + 1 + 1];
        match invoke("System::set_hook", w.as_slice(), &mut out) {
            [0] => Ok(()),
            [1, error] => Err(*error),
            _ => env::trap_with("pink: System::set_hook returned an unexpected value"),
        }
    }

    /// `System::total_balance_of(account) -> Balance`.
    #[inline]
    pub fn total_balance_of(account: &AccountId) -> crate::Balance {
        let mut input = [0u8; 4 + 32];
        let mut w = Writer::new(&mut input);
        w.bytes(&TOTAL_BALANCE_OF).put(account);
        let mut out = [0u8; 1 + 16];
        let mut r = Reader::new(invoke("System::total_balance_of", w.as_slice(), &mut out));
        match r.read::<crate::Balance>() {
            Some(balance) if r.remaining().is_empty() => balance,
            _ => env::trap_with("pink: System::total_balance_of returned an unexpected value"),
        }
    }

    /// `System::get_driver(name)`: the contract registered as driver `name`, if any.
    #[inline]
    pub fn get_driver(name: &[u8]) -> Option<AccountId> {
        let mut input = Writer::new(env::alloc(4 + 5 + name.len()));
        input.bytes(&GET_DRIVER).put(&Bytes(name));
        let mut out = [0u8; 1 + 1 + 32];
        let call = env::call(&system_contract_id(), 0, input.as_slice(), &mut out);
        if call.code != env::SUCCESS {
            env::trap_with("pink: System::get_driver failed");
        }
        let mut r = Reader::new(call.output);
        match (r.read::<u8>(), r.read::<Option<AccountId>>()) {
            (Some(0), Some(driver)) if r.remaining().is_empty() => driver,
            _ => env::trap_with("pink: System::get_driver returned an unexpected value"),
        }
    }
}

// --- PinkEvent side channel ----------------------------------------------------------------

/// The one topic of every `PinkEvent`: SCALE(b"phala.pink.event") zero-padded to 32 bytes.
pub const PINK_EVENT_TOPIC: Hash = *b"\x40phala.pink.event\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// `PinkEvent` variant indices (`#[codec(index = N)]` in pink's lib.rs).
pub mod event {
    pub const SET_HOOK: u8 = 2;
    pub const SET_LOG_HANDLER: u8 = 8;
    pub const SET_CONTRACT_WEIGHT: u8 = 9;
    pub const UPGRADE_RUNTIME_TO: u8 = 10;
}

/// Emits an already SCALE-encoded `PinkEvent` (variant index ‖ fields) for the runtime.
#[inline]
pub fn emit_pink_event(encoded: &[u8]) {
    env::deposit_event(&[PINK_EVENT_TOPIC], encoded);
}

// --- seal functions pink contracts need beyond env.rs --------------------------------------

#[inline]

pub fn keccak_256(data: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    unsafe { sys::hash_keccak_256(data.as_ptr(), data.len() as u32, out.as_mut_ptr()) };
    out
}

/// The Ethereum address (last 20 bytes of keccak256 of the uncompressed key) of a
/// compressed secp256k1 public key; traps on an invalid key.
#[inline]
pub fn ecdsa_to_eth_address(pubkey: &[u8; 33]) -> [u8; 20] {
    let mut out = [0u8; 20];
    match unsafe { sys::ecdsa_to_eth_address(pubkey.as_ptr(), out.as_mut_ptr()) } {
        env::SUCCESS => out,
        _ => env::trap_with("pink: invalid ecdsa public key"),
    }
}

#[inline]

pub fn block_number() -> u32 {
    let mut out = [0u8; 4];
    let mut len = out.len() as u32;
    unsafe { sys::block_number(out.as_mut_ptr(), &mut len) };
    u32::from_le_bytes(out)
}

/// The code hash of the contract at `account`, `None` when it is not a contract.
#[inline]
pub fn code_hash(account: &AccountId) -> Option<Hash> {
    let mut out = [0u8; 32];
    let mut len = out.len() as u32;
    match unsafe { sys::code_hash(account.as_ptr(), out.as_mut_ptr(), &mut len) } {
        env::SUCCESS => Some(out),
        _ => None,
    }
}

#[inline]

pub fn own_code_hash() -> Hash {
    let mut out = [0u8; 32];
    let mut len = out.len() as u32;
    unsafe { sys::own_code_hash(out.as_mut_ptr(), &mut len) };
    out
}

/// Replaces this contract's code from the next call on; false when the code is unknown.
#[inline]
pub fn set_code_hash(code_hash: &Hash) -> bool {
    unsafe { sys::set_code_hash(code_hash.as_ptr()) == env::SUCCESS }
}
