package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/ledgermq/ledgermq/wire"
)

// Argon2id parameters of new tokens (OWASP's minimum for argon2id: 19 MiB,
// 2 passes, 1 lane). They are stored with each hash, so they can change
// without invalidating tokens. A token's secret is 256 random bits, so the
// hash guards a leaked state snapshot, not a guessable password; verified
// tokens are cached (Verifier), so the cost is paid once per node.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	idLen        = 16 // hex characters
	secretLen    = 64 // hex characters
)

// HashParams is a token secret's argon2id hash and how it was computed.
type HashParams struct {
	Salt      []byte `json:"salt"`
	Key       []byte `json:"key"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

func (h HashParams) check() error {
	switch {
	case len(h.Salt) < 8 || len(h.Salt) > 64:
		return fmt.Errorf("%w: token salt of %d bytes", ErrInvalid, len(h.Salt))
	case len(h.Key) < 16 || len(h.Key) > 64:
		return fmt.Errorf("%w: token hash of %d bytes", ErrInvalid, len(h.Key))
	case h.Time < 1 || h.Time > 10 || h.MemoryKiB < 8 || h.MemoryKiB > 1<<20 || h.Threads < 1:
		return fmt.Errorf("%w: argon2id parameters t=%d m=%d p=%d", ErrInvalid, h.Time, h.MemoryKiB, h.Threads)
	}
	return nil
}

func (h HashParams) matches(secret string) bool {
	k := argon2.IDKey([]byte(secret), h.Salt, h.Time, h.MemoryKiB, h.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(k, h.Key) == 1
}

// HashSecret hashes a token secret with a fresh salt.
func HashSecret(secret string) (HashParams, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return HashParams{}, fmt.Errorf("auth: token salt: %w", err)
	}
	return HashParams{Salt: salt, Key: argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen),
		Time: argonTime, MemoryKiB: argonMemory, Threads: argonThreads}, nil
}

// NewToken makes a token for principal: the credential to show once
// (lmq_<id>_<secret>) and the record to replicate, which holds only the
// secret's hash. The leader calls it before proposing.
func NewToken(principal, description string, createdMs int64) (string, Token, error) {
	id, err := randomHex(idLen / 2)
	if err != nil {
		return "", Token{}, err
	}
	secret, err := randomHex(secretLen / 2)
	if err != nil {
		return "", Token{}, err
	}
	h, err := HashSecret(secret)
	if err != nil {
		return "", Token{}, err
	}
	t := Token{ID: id, Principal: principal, Description: description, CreatedMs: createdMs, Hash: h}
	if err := checkToken(t); err != nil {
		return "", Token{}, err
	}
	return wire.TokenPrefix + id + "_" + secret, t, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random token bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ErrBadToken: a credential that is malformed, unknown, revoked or wrong.
var ErrBadToken = errors.New("auth: invalid token")

// ErrUnknownToken (an ErrBadToken): no token with the credential's id is
// in this node's state — revoked, made up, or created so recently that
// this node has not applied it yet.
var ErrUnknownToken = fmt.Errorf("%w: unknown or revoked", ErrBadToken)

// ParseToken splits lmq_<id>_<secret>.
func ParseToken(tok string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(tok, wire.TokenPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: not an %s token", ErrBadToken, wire.TokenPrefix)
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || checkTokenID(id) != nil || secret == "" || len(secret) > 256 {
		return "", "", fmt.Errorf("%w: malformed", ErrBadToken)
	}
	return id, secret, nil
}

func checkTokenID(id string) error {
	if len(id) != idLen {
		return fmt.Errorf("%w: token id %q is not %d hex characters", ErrInvalid, id, idLen)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return fmt.Errorf("%w: token id %q is not hex", ErrInvalid, id)
	}
	return nil
}

// maxCached bounds a Verifier's cache; when full it starts afresh.
const maxCached = 10_000

// Verifier checks bearer tokens against the replicated state. Successful
// verifications are cached by the SHA-256 of the whole token; a cached
// token is accepted only while its id is still in the state, so a
// revocation applied on this node takes effect on the next request (the
// entry is dropped then).
type Verifier struct {
	state *State
	mu    sync.Mutex
	cache map[[32]byte]cached
	// failed remembers tokens whose secret was wrong (by the SHA-256 of
	// the whole token), so that a client resending a bad token costs no
	// argon2 hash each time; bounded like cache.
	failed map[[32]byte]struct{}
	// hashing bounds the argon2 hashes computed at once (19 MiB each):
	// a flood of made-up secrets for a real token id costs at most this
	// many hashes' memory and CPU at a time, not one per request.
	hashing chan struct{}
	hashes  atomic.Int64 // argon2 hashes computed (tests, metrics)
	// hashingID holds the token ids being hashed: one hash per id at a
	// time, so a flood of made-up secrets for one id takes one of the
	// maxHashing slots, not all of them.
	hashingID map[string]bool
}

// ErrBusy: the token could not be checked now (a hash of the same token
// id is under way, or every hashing slot stayed taken for busyWait); the
// client may retry.
var ErrBusy = errors.New("auth: too many token checks at once; retry")

// busyWait bounds how long a token check waits for a hashing slot.
const busyWait = 500 * time.Millisecond

// maxHashing is how many token hashes a node computes at once.
const maxHashing = 2

type cached struct{ id, principal string }

// NewVerifier returns a verifier over state.
func NewVerifier(state *State) *Verifier {
	return &Verifier{state: state, cache: map[[32]byte]cached{}, failed: map[[32]byte]struct{}{},
		hashing: make(chan struct{}, maxHashing), hashingID: map[string]bool{}}
}

// Verify returns the principal tok was created for, or ErrBadToken.
func (v *Verifier) Verify(tok string) (string, error) {
	key := sha256.Sum256([]byte(tok))
	v.mu.Lock()
	c, hit := v.cache[key]
	v.mu.Unlock()
	if hit {
		if t, ok := v.state.Token(c.id); ok && t.Principal == c.principal {
			return c.principal, nil
		}
		v.mu.Lock()
		delete(v.cache, key) // revoked
		v.mu.Unlock()
		return "", fmt.Errorf("%w: revoked", ErrBadToken)
	}
	id, secret, err := ParseToken(tok)
	if err != nil {
		return "", err
	}
	t, ok := v.state.Token(id)
	if !ok {
		return "", ErrUnknownToken
	}
	v.mu.Lock()
	_, bad := v.failed[key]
	v.mu.Unlock()
	if bad {
		return "", fmt.Errorf("%w: wrong secret", ErrBadToken)
	}
	match, err := v.hash(id, func() bool { return t.Hash.matches(secret) })
	if err != nil {
		return "", err
	}
	if !match {
		v.mu.Lock()
		if len(v.failed) >= maxCached {
			clear(v.failed)
		}
		v.failed[key] = struct{}{}
		v.mu.Unlock()
		return "", fmt.Errorf("%w: wrong secret", ErrBadToken)
	}
	v.mu.Lock()
	if len(v.cache) >= maxCached {
		clear(v.cache)
	}
	v.cache[key] = cached{id: t.ID, principal: t.Principal}
	v.mu.Unlock()
	return t.Principal, nil
}

// hash runs one argon2 check for token id within the hashing bounds.
func (v *Verifier) hash(id string, check func() bool) (bool, error) {
	v.mu.Lock()
	if v.hashingID[id] {
		v.mu.Unlock()
		return false, ErrBusy
	}
	v.hashingID[id] = true
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.hashingID, id)
		v.mu.Unlock()
	}()
	t := time.NewTimer(busyWait)
	defer t.Stop()
	select {
	case v.hashing <- struct{}{}:
	case <-t.C:
		return false, ErrBusy
	}
	defer func() { <-v.hashing }()
	v.hashes.Add(1)
	return check(), nil
}

// Hashes returns how many argon2 hashes Verify has computed.
func (v *Verifier) Hashes() int64 { return v.hashes.Load() }

// Cached returns the number of cached verifications (tests, metrics).
func (v *Verifier) Cached() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}

// SameToken compares two credentials in constant time (of their hashes).
func SameToken(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
