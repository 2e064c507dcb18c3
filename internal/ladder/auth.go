package ladder

import (
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/drop"
	"github.com/vipd/vipd/pkg/vrrp"
)

// HMAC is what an instance with auth_hmac checks adverts against
// (draft-cassen-vrrp-auth-hmac, keepalived 2.4's auth_hmac). Its keys keep
// hash state: only the one goroutine that checks packets may use it.
type HMAC struct {
	// Unsigned says whether unsigned adverts are admitted (receive_only
	// and permissive modes, while a cluster migrates).
	Unsigned bool
	// Window is how far a timestamp may be from the clock; 0 for the
	// monotonic anti-replay mode, which checks only the sequence.
	Window time.Duration
	keys   []*vrrp.Key
	seen   *Replay
}

// NewHMAC returns the verifier of an instance's auth_hmac configuration,
// whose keys must hold their secrets (config.Load reads them). seen is the
// replay state, kept across reloads so that a new configuration does not
// forget what the old one accepted.
func NewHMAC(a *config.AuthHMAC, seen *Replay) (*HMAC, error) {
	v := &HMAC{Unsigned: a.Mode != config.AuthEnforce, seen: seen}
	if a.AntiReplay == config.AntiReplayTime {
		v.Window = a.TimeWindow
	}
	for _, k := range a.Keys {
		key, err := vrrp.NewKey(k.ID, k.Secret)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// verify runs the checks of a signed or unsigned advert b from src, decoded
// into p, cheapest first: a forged flood costs no HMAC unless its key id
// and timestamp are plausible, and moves no replay state unless its HMAC
// is right.
func (a *HMAC) verify(p *vrrp.Packet, b []byte, src netip.Addr, now time.Time) drop.Reason {
	if !p.Signed {
		if a.Unsigned {
			return drop.None
		}
		return drop.AuthMissing
	}
	if a.Window > 0 && !within(p.Auth.Sec(), now, a.Window) {
		return drop.AuthStale
	}
	var key *vrrp.Key
	for _, k := range a.keys {
		if k.ID() == p.Auth.KeyID {
			key = k
			break
		}
	}
	if key == nil {
		return drop.AuthUnknownKey
	}
	if !key.Verify(b, src) {
		return drop.AuthBadHMAC
	}
	if !a.seen.accept(src, p.Auth.Seq, now, a.Window) {
		return drop.AuthReplay
	}
	return drop.None
}

// within says whether the 32-bit seconds sec are within window of now,
// either side, across the field's wrap.
func within(sec uint32, now time.Time, window time.Duration) bool {
	d := time.Duration(int32(uint32(now.Unix())-sec)) * time.Second
	return d <= window && d >= -window
}

// Replay is the highest sequence number accepted from each sender, for a
// bounded number of senders: the least recently heard is forgotten first.
// Only senders whose HMAC verified get a slot, so forged sources cannot
// churn it. Like HMAC, it belongs to one goroutine.
type Replay struct {
	slots []replaySlot
	clock uint64
}

type replaySlot struct {
	src  netip.Addr
	seq  uint64
	used uint64 // 0: free
}

// DefaultReplaySenders is how many senders a multicast instance remembers:
// more routers than a VRRP segment has.
const DefaultReplaySenders = 16

// NewReplay returns replay state for up to senders senders.
func NewReplay(senders int) *Replay {
	return &Replay{slots: make([]replaySlot, max(senders, 1))}
}

// accept records seq from src and reports whether it is after the last
// one accepted from src. In time mode (window > 0) a mark older than the
// window is forgotten first: the window already refuses what it would
// order, and forgetting it lets a sender whose clock was stepped back
// rejoin.
func (r *Replay) accept(src netip.Addr, seq uint64, now time.Time, window time.Duration) bool {
	r.clock++
	var s *replaySlot
	for i := range r.slots {
		c := &r.slots[i]
		if c.used != 0 && c.src == src {
			s = c
			break
		}
		if s == nil || c.used < s.used {
			s = c // the free or least recently used slot, if src has none
		}
	}
	known := s.used != 0 && s.src == src
	if known && window > 0 && !within(uint32(s.seq>>32), now, window) {
		known = false
	}
	if known && !vrrp.SeqAfter(seq, s.seq) {
		s.used = r.clock
		return false
	}
	*s = replaySlot{src: src, seq: seq, used: r.clock}
	return true
}
