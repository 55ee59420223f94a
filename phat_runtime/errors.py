"""The one exception tree of phat_runtime.

Every error we raise derives from :class:`PhatError` and is drawn below exactly once (with the
module that defines it when that is not this one); foreign exceptions (wasmtime traps,
scalecodec failures, OS errors) are translated at the boundary and raised ``from`` the
original. ``tests/test_errors.py`` walks every module of the package and holds this drawing to
the code. The tree::

    PhatError
    ├── ConfigError                 bad configuration or arguments to our API
    │   └── DataDirLocked           another process holds the worker's data dir (names its PID)
    ├── ModuleError                 wasm code refused at upload (nothing runs)
    │   ├── MalformedModule         not valid wasm (truncated, bad bytes, fails validation)
    │   ├── ModuleTooLarge          code > 2 MiB
    │   ├── BadExports              exports other than exactly `deploy` and `call`
    │   ├── BadImports              unknown host function, wrong signature, table/global import
    │   ├── BadMemory               missing `env.memory` import, own memory, limits > 64 pages
    │   └── FloatInstructions       float opcodes in code that must be deterministic
    ├── MetadataError               ink! metadata / bundle unreadable or inconsistent
    │   ├── UnknownLabel            no constructor / message / event with that label
    │   ├── EncodeError             arguments do not match the metadata (names arg and type)
    │   ├── DecodeError             bytes do not decode as the metadata says
    │   │   └── ScaleError          (codec/scale.py) not the SCALE encoding expected:
    │   │                           truncated, bad variant or length, trailing bytes
    │   └── SourceHashMismatch      metadata from another build: `source.hash` is not the code's
    │                               hash (also a UserWarning: warned, or raised when strict)
    ├── NotFound
    │   ├── CodeNotFound            no code with that hash in the cluster
    │   └── ContractNotFound        no contract at that address
    ├── ExecutionError              a contract run failed (a revert is *not* an error)
    │   ├── ContractTrapped         wasm trap: unreachable, panic, stack overflow, OOB access
    │   ├── OutOfGas                fuel exhausted
    │   ├── WallClockTimeout        epoch deadline passed (query wall-clock budget)
    │   ├── HostFunctionError       a host function refused its arguments (pallet errors:
    │   │                           OutOfBounds, DecodingFailed, OutputBufferTooSmall, ...)
    │   ├── ChainExtensionError     unknown chain-extension id / a pink handler failed
    │   ├── CallDepthExceeded       more than 5 nested frames
    │   ├── ReentranceDenied        re-entry without ALLOW_REENTRY
    │   └── InternalError           a bug in the host (reported, worker stays up)
    ├── EgressError                 (pink/egress.py) a contract's HTTP request got no response;
    │                               ``kind`` is pink's HttpRequestError (never leaves pink/)
    ├── StateError                  the state backend failed or found corruption
    │   ├── StateCorrupted          stored state failed authentication (names the contract)
    │   └── WrongStateKey           store or snapshot sealed under another cluster key
    ├── TeeError                    a TEE platform, sealing or attestation input failed
    │   ├── PlatformError           device / file protocol of the TEE failed
    │   ├── SealingError            sealed data does not unseal (never silently replaced)
    │   └── AttestationError        attestation inputs unusable
    │       └── PolicyError         an attestation policy file is invalid
    ├── ProtocolError               bytes that are not a valid phat chain message: unknown
    │                               version or variant, trailing bytes, oversize field, a sealed
    │                               payload that does not open
    ├── ChainError                  a Substrate node, an extrinsic or the devnet failed
    │   ├── ChainUnavailable        the node cannot be reached or went away (names the URL)
    │   ├── ChainDiverged           finalized blocks do not continue the chain followed so far
    │   ├── SubmitError             the node refused an extrinsic, or it failed on chain
    │   │   └── NoFunds             the signing account cannot pay the fee: fund it
    │   └── DevnetError             the local chopsticks devnet could not install or start
    ├── EnvelopeError               (crypto/e2e.py) an encrypted frame does not open, or an
    │                               X25519 key is unusable (low order): wrong session, key,
    │                               counter or route, or tampered bytes
    ├── RpcError                    (worker/error_codes.py) a request refused with a public
    │                               error code (``code``, HTTP ``status``); safe to show
    ├── BodyError                   (rpc/bodies.py) a body that is not a well-formed v2 frame
    ├── VerificationError           (rpc/channel.py) the worker's attestation or a receipt did
    │   │                           not verify: do not trust the response
    │   └── UntrustedWorker         (rpc/cluster_directory.py) the worker is not a live member
    │                               of the cluster on chain (unregistered, failed, revoked)
    ├── WorkerError                 (rpc/channel.py) the worker refused a client's request
    ├── WorkerUnreachable           (rpc/channel.py) no HTTP exchange with the worker was possible
    │   ├── WorkerTimeout           (rpc/channel.py) connected, but no answer in time
    │   └── ClusterUnreachable      (rpc/cluster_client.py) no live worker of the cluster
    │                               answered (names each one's failure)
    ├── MemberBehind                (rpc/cluster_client.py) a cluster member has not applied a
    │                               chain block whose state the client already saw (catching up)
    ├── ControlClosed               (rpc/control.py) a query process's control channel to the
    │                               worker's main process went away
    └── DeployFailed                (testing/harness.py, tests only; also an AssertionError) a
                                    test harness constructor did not succeed

Not errors, and so outside the tree: the control-flow signals ``ContractReturned`` and
``ContractTerminated`` (wasm/frame.py: ``seal_return`` / ``terminate`` unwinding the wasm
stack) and ``_TransferFailed`` (runtime/execution.py), and the codec's internal carriers
``ValueProblem`` / ``DataProblem`` (codec/scale_args.py, codec/scale_decode.py), which
:mod:`phat_runtime.codec.metadata` turns into ``EncodeError`` / ``DecodeError`` with the
location. None of them leaves its module.

``ExecutionError`` carries ``kind``: the pallet-contracts error name where one exists
(``"OutOfBounds"``, ``"ContractTrapped"``, ...), so results can be compared with Phala's.
"""

from __future__ import annotations


class PhatError(Exception):
    """Root of every error raised by phat_runtime."""


class ConfigError(PhatError):
    """Bad configuration or bad arguments passed to our API."""


class DataDirLocked(ConfigError):
    """Another process holds the exclusive lock of a worker data dir (``worker/datadir.py``)."""

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


# --- code upload -----------------------------------------------------------------------------


class ModuleError(PhatError):
    """Wasm code refused before anything runs."""


class MalformedModule(ModuleError):
    """The bytes are not a valid wasm module."""


class ModuleTooLarge(ModuleError):
    """The code exceeds the maximum code size."""


class BadExports(ModuleError):
    """The module must export exactly the functions `deploy` and `call`."""


class BadImports(ModuleError):
    """The module imports something the host does not provide."""


class BadMemory(ModuleError):
    """The module's memory is not an `env.memory` import within the limits."""


class FloatInstructions(ModuleError):
    """The module uses float instructions but must be deterministic."""


# --- metadata --------------------------------------------------------------------------------


class MetadataError(PhatError):
    """ink! metadata or a bundle is unreadable or inconsistent."""


class UnknownLabel(MetadataError):
    """No constructor, message or event with that label."""


class EncodeError(MetadataError):
    """Arguments do not match what the metadata declares."""


class DecodeError(MetadataError):
    """Bytes do not decode as the metadata declares."""


class SourceHashMismatch(MetadataError, UserWarning):
    """Metadata from another build: its ``source.hash`` is not blake2_256 of the code beside it.

    The code given is what runs; the metadata only supplies labels and types. Issued as a
    warning by default (``warnings.warn``), raised when loading with ``strict=True``.
    ``declared`` and ``actual`` are the two hashes."""

    def __init__(self, message: str, *, declared: bytes = b"", actual: bytes = b"") -> None:
        super().__init__(message)
        self.declared = declared
        self.actual = actual


# --- lookups ---------------------------------------------------------------------------------


class NotFound(PhatError):
    """Something looked up by id does not exist."""


class CodeNotFound(NotFound):
    """No code with that hash has been uploaded."""


class ContractNotFound(NotFound):
    """No contract lives at that address."""


# --- execution -------------------------------------------------------------------------------


class ExecutionError(PhatError):
    """A contract execution failed. ``kind`` is the pallet-contracts error name."""

    kind = "ExecutionError"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class ContractTrapped(ExecutionError):
    kind = "ContractTrapped"


class OutOfGas(ExecutionError):
    kind = "OutOfGas"


class WallClockTimeout(ExecutionError):
    kind = "Timeout"


class HostFunctionError(ExecutionError):
    kind = "HostFunctionError"


class ChainExtensionError(ExecutionError):
    kind = "ChainExtensionError"


class CallDepthExceeded(ExecutionError):
    kind = "MaxCallDepthReached"


class ReentranceDenied(ExecutionError):
    kind = "ReentranceDenied"


class InternalError(ExecutionError):
    kind = "InternalError"


# --- state -----------------------------------------------------------------------------------


class StateError(PhatError):
    """The state backend failed or detected corruption."""


# --- TEE and attestation ---------------------------------------------------------------------


class TeeError(PhatError):
    """A TEE platform, sealing or attestation input failed. Subtree::

        TeeError
        ├── PlatformError           the TEE device / file protocol failed (no device, wrong
        │                           provider, concurrent writer, short read)
        ├── SealingError            sealed data cannot be sealed or unsealed: tampered, sealed by
        │                           another platform / enclave / key, missing or unsafe key file
        └── AttestationError        attestation inputs unusable (PCCS fetch unavailable, ...)
            └── PolicyError         an attestation policy file is invalid (unknown key, bad hex)

    A quote that fails verification is *not* an exception: verification returns a ``Verdict``
    whose ``failures`` say which check failed and why.
    """


class PlatformError(TeeError):
    """The TEE platform's device or file protocol failed."""


class SealingError(TeeError):
    """Sealed data could not be sealed or unsealed (never silently replaced)."""


class AttestationError(TeeError):
    """Attestation inputs (collateral source, policy) are unusable."""


class PolicyError(AttestationError):
    """An attestation policy is invalid."""


class StateCorrupted(StateError):
    """Stored state failed authentication: a flipped byte, a swapped or moved row, a rolled-back
    or truncated file. ``owner`` names who the data belongs to (a contract's SS58 address and
    hex, or a cluster namespace); ``what`` says what failed. Never carries key material."""

    def __init__(self, message: str, *, owner: str = "", what: str = "") -> None:
        super().__init__(message)
        self.owner = owner
        self.what = what


class WrongStateKey(StateError):
    """A state store or snapshot was sealed under another cluster key (or is damaged beyond
    telling the two apart)."""


# --- chain -----------------------------------------------------------------------------------


class ProtocolError(PhatError):
    """Bytes that are not a valid phat chain message (``docs/protocol.md``): unknown version or
    variant, trailing bytes, a field over its limit, or a sealed payload that does not open.
    Every worker rejects such a message the same way; the message text is the reason."""


class ChainError(PhatError):
    """A Substrate node, an extrinsic or the local devnet failed."""


class ChainUnavailable(ChainError):
    """The node cannot be reached, or the connection to it was lost."""


class ChainDiverged(ChainError):
    """A finalized block does not continue the chain followed so far (another chain, or a
    devnet that was reset)."""


class SubmitError(ChainError):
    """The node refused an extrinsic, or it was included but failed."""


class NoFunds(SubmitError):
    """The signing account cannot pay the transaction fee."""


class DevnetError(ChainError):
    """The local chopsticks devnet could not be installed or started."""
