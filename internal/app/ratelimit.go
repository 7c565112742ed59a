package app

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per client address. Every room join, test session and login costs
// tokens; a person clicking around never notices, a script creating sessions in a loop is slowed to
// the refill rate.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int // buckets kept at most: beyond it new addresses are refused until a sweep frees room
	now   func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate, burst float64, max int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: burst, max: max, now: now, buckets: map[netip.Prefix]*bucket{}}
}

// allow takes cost tokens from key's bucket. When it cannot, it says how long until it could.
func (l *limiter) allow(key netip.Prefix, cost float64) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.sweepLocked(now)
			if len(l.buckets) >= l.max {
				// Fail closed: an attacker spraying addresses must not grow the map without bound.
				return false, time.Second
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < cost {
		return false, time.Duration((cost - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens -= cost
	return true, 0
}

// sweep forgets buckets that have refilled: they hold no information a new bucket would not.
func (l *limiter) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
}

func (l *limiter) sweepLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// clientKey is the address a request is charged to: the TCP peer, never a header, because Parley is
// the edge and anyone can write X-Forwarded-For. IPv6 clients are grouped by /64, the block one
// subscriber usually gets, so rotating addresses inside it does not escape the limit.
func clientKey(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}
