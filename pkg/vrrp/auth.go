package vrrp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"time"
)

// AuthTrailerLen is the length of the auth_hmac trailer that follows the
// addresses (for v2, the authentication data) of a signed message, inside
// the IP payload (draft-cassen-vrrp-auth-hmac, as keepalived 2.4.2 and
// later send it).
const AuthTrailerLen = 28

// AuthExtSHA256 is the ext_type of the HMAC-SHA256 trailer, the only one
// defined.
const AuthExtSHA256 = 1

const (
	macLen    = 16 // HMAC-SHA256 truncated to 128 bits
	macOff    = AuthTrailerLen - macLen
	pseudoLen = 20 // the MAC's pseudo-header: 4 bytes, then the source zero-padded
)

// zeros stands in for the checksum and the MAC in the MAC's input. It is
// a package variable so that writing it to a hash.Hash does not allocate.
var zeros [macLen]byte

// AuthTrailer is the auth_hmac trailer of a signed advert. On the wire,
// big-endian: ext_type (1), key id (1), reserved (2), then Seq as seconds
// (4), subseconds (2) and a counter (2), then MAC.
type AuthTrailer struct {
	KeyID uint8
	Seq   uint64 // sec<<32 | subsec<<16 | ctr
	MAC   [macLen]byte
}

// Sec returns the seconds field of t.Seq: the sender's clock, modulo
// 2^32, when it signed.
func (t AuthTrailer) Sec() uint32 { return uint32(t.Seq >> 32) }

// parseTrailer decodes t, the last AuthTrailerLen bytes of a signed
// message.
func parseTrailer(t []byte) (AuthTrailer, error) {
	if t[0] != AuthExtSHA256 || t[2] != 0 || t[3] != 0 {
		return AuthTrailer{}, fmt.Errorf("%w: ext_type %d, reserved %#04x", ErrAuthMalformed, t[0], binary.BigEndian.Uint16(t[2:4]))
	}
	return AuthTrailer{
		KeyID: t[1],
		Seq:   binary.BigEndian.Uint64(t[4:12]),
		MAC:   [macLen]byte(t[macOff:]),
	}, nil
}

// Key is one auth_hmac key: its id and its secret, keyed into a reusable
// HMAC-SHA256. A Key is not safe for concurrent use: each goroutine that
// signs or verifies keeps its own (NewKey is cheap).
type Key struct {
	id  uint8
	h   hash.Hash // keyed; Reset returns it to the keyed state
	ph  [pseudoLen]byte
	sum [sha256.Size]byte
}

// NewKey returns the key with id 1..255 and a non-empty secret, which it
// copies. Which secret lengths to accept is the configuration's policy.
func NewKey(id uint8, secret []byte) (*Key, error) {
	if id == 0 {
		return nil, errors.New("vrrp: auth_hmac key id 0, want 1..255")
	}
	if len(secret) == 0 {
		return nil, errors.New("vrrp: empty auth_hmac secret")
	}
	return &Key{id: id, h: hmac.New(sha256.New, bytes.Clone(secret))}, nil
}

// ID returns k's key id.
func (k *Key) ID() uint8 { return k.id }

// Append appends p's wire form, followed by a trailer with k's id, seq
// and the MAC, to b and returns the extended slice. The checksum leaves
// the trailer out over IPv4 (cs chooses the pseudo-header as for
// Packet.Append) and covers it over IPv6. p.Signed and p.Auth are
// ignored.
//
// Append checks what Packet.Append checks, with the same errors; on error
// b is returned as it was. With enough capacity in b, Append does not
// allocate.
func (k *Key) Append(b []byte, p *Packet, src, dst netip.Addr, cs Checksum, seq uint64) ([]byte, error) {
	start := len(b)
	b, is4, err := p.appendMsg(b, src, dst, cs, AuthTrailerLen)
	if err != nil {
		return b, err
	}
	b = append(b, AuthExtSHA256, k.id, 0, 0)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, zeros[:]...)
	msg := b[start:]
	copy(msg[len(msg)-macLen:], k.mac(msg, src))
	if !is4 {
		putChecksum(msg, src, dst, ChecksumPseudoHeader)
	}
	return b, nil
}

// Verify reports whether msg, a signed VRRP message as received from src
// (the bytes ParseInto decoded with Signed set), carries k's id and MAC.
// It is false for a message too short to hold a header and a trailer, or
// an invalid src. The MAC is compared in constant time; Verify does not
// allocate.
func (k *Key) Verify(msg []byte, src netip.Addr) bool {
	if len(msg) < headerLen+AuthTrailerLen || !src.IsValid() {
		return false
	}
	t := msg[len(msg)-AuthTrailerLen:]
	if t[1] != k.id {
		return false
	}
	return hmac.Equal(k.mac(msg, src), t[macOff:])
}

// mac returns the MAC of msg, a signed message from src, in k's scratch
// space. It covers a pseudo-header {4 or 6, version, VRID, 0, src, zero
// padding}, then msg with its checksum and MAC as zeros: the IP header is
// not covered except for its source.
func (k *Key) mac(msg []byte, src netip.Addr) []byte {
	src = src.Unmap()
	k.ph = [pseudoLen]byte{1: msg[0] >> 4, 2: msg[1]}
	if src.Is4() {
		k.ph[0] = 4
		a := src.As4()
		copy(k.ph[4:], a[:])
	} else {
		k.ph[0] = 6
		a := src.As16()
		copy(k.ph[4:], a[:])
	}
	h := k.h
	h.Reset()
	h.Write(k.ph[:])
	h.Write(msg[:6])
	h.Write(zeros[:2]) // the checksum
	h.Write(msg[8 : len(msg)-macLen])
	h.Write(zeros[:])
	return h.Sum(k.sum[:0])[:macLen]
}

// SeqAt returns the sequence number the clock gives at t: the seconds
// modulo 2^32, then the fraction of a second in 1/65536ths, then a zero
// counter.
func SeqAt(t time.Time) uint64 {
	return seqOf(uint64(uint32(t.Unix())), uint64(t.Nanosecond()))
}

// seqOf lays out sec seconds and nsec nanoseconds (below 1e9) as a
// sequence number.
func seqOf(sec, nsec uint64) uint64 {
	return sec<<32 | (nsec<<16/1e9)<<16
}

// NextSeq returns the sequence number to send at now after last: the
// clock's, or last+1 if the clock's is not after last (two adverts within
// one subsecond tick, or a clock that stepped back).
//
// window is the peers' anti-replay window in "time" mode, or 0 for
// "monotonic" mode. In time mode, if last is ahead of the clock by more
// than window, as after a clock that ran ahead and was corrected, NextSeq
// restarts from the clock: peers judge the sequence against their own
// clocks, and following last would be rejected until the clock caught up.
func NextSeq(last uint64, now time.Time, window time.Duration) uint64 {
	s := SeqAt(now)
	if SeqAfter(s, last) {
		return s
	}
	// Beyond 2^31 s, every distance that is not "after" is within the
	// window.
	if window > 0 && window < 1<<31*time.Second &&
		last-s > seqOf(uint64(window/time.Second), uint64(window%time.Second)) {
		return s
	}
	return last + 1
}

// SeqAfter reports whether sequence number a is after b in RFC 1982
// serial number arithmetic over 64 bits, so that the seconds may wrap.
func SeqAfter(a, b uint64) bool { return int64(a-b) > 0 }
