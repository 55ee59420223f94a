//! AiAgent: an AI agent whose API key lives only inside the contract, and whose answers are
//! signed by a key only this contract can derive.
//!
//! - The owner (the deployer) sends `configure(endpoint, model, api_key)` in a transaction:
//!   the request travels encrypted to the worker and the key is stored in the contract's
//!   storage, which the worker keeps encrypted. No message ever returns it (`config` says
//!   only whether one is set).
//! - `ask(prompt)` (a query: pink's HTTP works in queries only) POSTs an OpenAI-compatible
//!   chat-completions request to `endpoint` with `Authorization: Bearer <api_key>`, reads
//!   `choices[0].message.content` from the JSON answer and returns it signed.
//! - What is signed (sr25519, schnorrkel context `substrate`, 64-byte signature):
//!
//! ```text
//! message = b"ai_agent/answer/v1" ‖ contract address (32) ‖ blake2_256(prompt) ‖ blake2_256(answer)
//! key     = derive_sr25519_key(b"ai_agent/signing")     // public half: `public_key()`
//! ```
//!
//! Anyone holding a prompt, an answer and a signature checks it against `public_key()` of
//! the contract at that address: the key is a function of the cluster key and the contract
//! address, so no other contract (and no one outside the cluster) can produce it.
//!
//! The endpoint is fixed by the owner: a caller-chosen URL would receive the key.
//!
//! Storage: root struct `AiAgent { owner: AccountId, endpoint: String, model: String,
//! api_key: String }` at `00 00 00 00`.

#![no_std]
#![no_main]

mod json;

use phat_sdk::ink::{self, OrCouldNotRead, Selector};
use phat_sdk::pink::{self, HttpRequest, LogLevel, SigType, Sr25519Secret};
use phat_sdk::scale::{Bytes, Encode, Reader, Writer};
use phat_sdk::{env, AccountId};

// Selectors = blake2_256(label)[..4]; build.py checks them against the metadata.
const NEW: Selector = [0x9b, 0xae, 0x9d, 0x5e];
const OWNER: Selector = [0xfe, 0xae, 0xa4, 0xfa];
const CONFIGURE: Selector = [0xb1, 0xb5, 0x73, 0xc4];
const CONFIG: Selector = [0x70, 0x71, 0x47, 0x44];
const PUBLIC_KEY: Selector = [0x52, 0x06, 0x1d, 0x7d];
const ASK: Selector = [0x02, 0x0f, 0x74, 0x1e];

const KEY_SALT: &[u8] = b"ai_agent/signing";
const SIGNING_DOMAIN: &[u8] = b"ai_agent/answer/v1";
/// Longest endpoint URL, model name and API key `configure` accepts.
const MAX_ENDPOINT: usize = 512;
const MAX_MODEL: usize = 128;
const MAX_API_KEY: usize = 512;
/// The root struct's largest encoding: owner + three strings with their length prefixes.
const ROOT_CAPACITY: usize = 32 + 3 * 2 + MAX_ENDPOINT + MAX_MODEL + MAX_API_KEY;
/// A prompt fills at most this much of the request body (escaped, it may grow up to 6×).
const MAX_PROMPT: usize = 2048;

/// `ai_agent::ai_agent::Error` (SCALE: variant index ‖ fields).
enum Error {
    NotOwner,
    QueryOnly,
    NotConfigured,
    InvalidConfig,
    PromptTooLong,
    HttpStatus(u16),
    InvalidResponse,
}

impl Encode for Error {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            Error::NotOwner => w.put(&0u8),
            Error::QueryOnly => w.put(&1u8),
            Error::NotConfigured => w.put(&2u8),
            Error::InvalidConfig => w.put(&3u8),
            Error::PromptTooLong => w.put(&4u8),
            Error::HttpStatus(code) => w.put(&5u8).put(code),
            Error::InvalidResponse => w.put(&6u8),
        };
    }
}

/// The root struct; strings borrow the storage read buffer (or the call input).
struct AiAgent<'a> {
    owner: AccountId,
    endpoint: &'a [u8],
    model: &'a [u8],
    api_key: &'a [u8],
}

impl Encode for AiAgent<'_> {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&self.owner).put(&Bytes(self.endpoint)).put(&Bytes(self.model));
        w.put(&Bytes(self.api_key));
    }
}

fn load() -> AiAgent<'static> {
    let buf = env::alloc(ROOT_CAPACITY);
    let mut r = Reader::new(ink::load_root(buf));
    let decoded = (|| {
        Some(AiAgent { owner: r.read()?, endpoint: r.read()?, model: r.read()?, api_key: r.read()? })
    })();
    match decoded {
        Some(agent) => agent,
        None => env::trap_with("could not properly decode storage entry"),
    }
}

fn store(agent: &AiAgent) {
    let mut w = Writer::new(env::alloc(ROOT_CAPACITY));
    w.put(agent);
    ink::store_root(w.as_slice());
}

/// `Config { endpoint: String, model: String, has_api_key: bool }` — never the key itself.
struct Config<'a>(&'a AiAgent<'a>);

impl Encode for Config<'_> {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&Bytes(self.0.endpoint)).put(&Bytes(self.0.model)).put(&!self.0.api_key.is_empty());
    }
}

/// `Answer { answer: String, signature: [u8; 64], signer: [u8; 32] }`.
struct Answer<'a> {
    answer: &'a [u8],
    signature: [u8; 64],
    signer: [u8; 32],
}

impl Encode for Answer<'_> {
    fn encode_to(&self, w: &mut Writer) {
        w.put(&Bytes(self.answer)).put(&self.signature).put(&self.signer);
    }
}

// --- configuration -------------------------------------------------------------------------

/// A header value pink (and HTTP) accepts, and that needs no JSON escaping: visible ASCII.
fn is_token(text: &[u8]) -> bool {
    text.iter().all(|&c| (0x21..0x7f).contains(&c))
}

fn configure(
    agent: &mut AiAgent<'static>,
    endpoint: &'static [u8],
    model: &'static [u8],
    api_key: &'static [u8],
) -> Result<(), Error> {
    if env::caller() != agent.owner {
        return Err(Error::NotOwner);
    }
    let endpoint_ok = endpoint.len() <= MAX_ENDPOINT
        && (endpoint.starts_with(b"http://") || endpoint.starts_with(b"https://"))
        && is_token(endpoint);
    if !endpoint_ok || model.len() > MAX_MODEL || !is_token(model) {
        return Err(Error::InvalidConfig);
    }
    if api_key.is_empty() || api_key.len() > MAX_API_KEY || !is_token(api_key) {
        return Err(Error::InvalidConfig);
    }
    agent.endpoint = endpoint;
    agent.model = model;
    agent.api_key = api_key;
    store(agent);
    pink::log(LogLevel::Info, "configured: endpoint, model and API key set by the owner");
    Ok(())
}

// --- asking --------------------------------------------------------------------------------

fn signing_key() -> Sr25519Secret {
    pink::derive_sr25519_key(KEY_SALT)
}

/// The chat-completions request body: one user message.
fn request_body(model: &[u8], prompt: &[u8]) -> &'static [u8] {
    let mut out = json::Out::new(env::alloc(64 + model.len() + 6 * prompt.len()));
    out.raw(b"{\"model\":\"").raw(model).raw(b"\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    out.escaped(prompt).raw(b"\"}]}");
    out.finish()
}

fn ask(agent: &AiAgent, prompt: &[u8]) -> Result<Answer<'static>, Error> {
    // pink answers HTTP in a transaction with a canned 523 and signs nothing: say why.
    if pink::is_in_transaction() {
        return Err(Error::QueryOnly);
    }
    if agent.api_key.is_empty() {
        return Err(Error::NotConfigured);
    }
    if prompt.len() > MAX_PROMPT {
        return Err(Error::PromptTooLong);
    }
    let mut bearer = json::Out::new(env::alloc(7 + agent.api_key.len()));
    bearer.raw(b"Bearer ").raw(agent.api_key);
    let bearer = bearer.finish();
    let headers = [
        (&b"Content-Type"[..], &b"application/json"[..]),
        (&b"Accept"[..], &b"application/json"[..]),
        (&b"Authorization"[..], bearer),
    ];
    let body = request_body(agent.model, prompt);
    let response = pink::http_request(&HttpRequest {
        url: agent.endpoint,
        method: b"POST",
        headers: &headers,
        body,
    });
    if response.status_code != 200 {
        pink::log(LogLevel::Warn, "the chat endpoint answered with an error status");
        return Err(Error::HttpStatus(response.status_code));
    }
    let answer = json::chat_content(response.body).ok_or(Error::InvalidResponse)?;
    let mut message = [0u8; 18 + 32 + 32 + 32];
    message[..18].copy_from_slice(SIGNING_DOMAIN);
    message[18..50].copy_from_slice(&env::address());
    message[50..82].copy_from_slice(&env::blake2_256(prompt));
    message[82..].copy_from_slice(&env::blake2_256(answer));
    let key = signing_key();
    let mut signature = [0u8; 64];
    let signed = pink::sign(SigType::Sr25519, key.as_bytes(), &message);
    if signed.len() != signature.len() {
        env::trap_with("pink: sr25519 signature is not 64 bytes");
    }
    signature.copy_from_slice(signed);
    pink::log(LogLevel::Info, "answered a prompt (signed)");
    Ok(Answer { answer, signature, signer: pink::sr25519_public_key(&key) })
}

// --- entry points --------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn deploy() {
    ink::deny_payment();
    let (selector, _) = ink::split_selector(env::input()).or_could_not_read();
    if selector != NEW {
        ink::could_not_read_input();
    }
    store(&AiAgent { owner: env::caller(), endpoint: &[], model: &[], api_key: &[] });
    ink::return_constructor_ok()
}

/// A decoded call; strings borrow the call input.
enum Message {
    Owner,
    Configure(&'static [u8], &'static [u8], &'static [u8]),
    Config,
    PublicKey,
    Ask(&'static [u8]),
}

fn decode(selector: Selector, args: &mut Reader<'static>) -> Option<Message> {
    Some(match selector {
        OWNER => Message::Owner,
        CONFIGURE => Message::Configure(args.read()?, args.read()?, args.read()?),
        CONFIG => Message::Config,
        PUBLIC_KEY => Message::PublicKey,
        ASK => Message::Ask(args.read()?),
        _ => return None,
    })
}

#[no_mangle]
pub extern "C" fn call() {
    ink::deny_payment();
    let (selector, mut args) = ink::split_selector(env::input()).or_could_not_read();
    let message = decode(selector, &mut args).or_could_not_read();
    let mut agent = load();
    match message {
        Message::Owner => ink::return_message(&agent.owner),
        Message::Configure(endpoint, model, api_key) => {
            ink::return_message_result(&configure(&mut agent, endpoint, model, api_key))
        }
        Message::Config => ink::return_message(&Config(&agent)),
        Message::PublicKey => ink::return_message(&pink::sr25519_public_key(&signing_key())),
        Message::Ask(prompt) => ink::return_message_result(&ask(&agent, prompt)),
    }
}
