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
type limiter[K comparable] struct {
	rate  float64 // tokens per second
	burst float64
	max   int // buckets kept at most: beyond it new addresses are refused until a sweep frees room
	now   func() time.Time

	mu      sync.Mutex
	buckets map[K]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter[K comparable](rate, burst float64, max int, now func() time.Time) *limiter[K] {
	return &limiter[K]{rate: rate, burst: burst, max: max, now: now, buckets: map[K]*bucket{}}
}

// allow takes cost tokens from key's bucket. When it cannot, it says how long until it could.
func (l *limiter[K]) allow(key K, cost float64) (bool, time.Duration) {
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

// refund gives back tokens taken by allow, up to the burst.
func (l *limiter[K]) refund(key K, n float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens = min(l.burst, b.tokens+n)
	}
}

// sweep forgets buckets that have refilled: they hold no information a new bucket would not.
func (l *limiter[K]) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
}

func (l *limiter[K]) sweepLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// clientKey is the address a request is charged to: Config.ClientAddr's answer (which believes
// forwarding headers only from the operator's proxies), else the TCP peer.
func (a *App) clientKey(r *http.Request) netip.Prefix {
	if a.cfg.ClientAddr != nil {
		return keyOf(a.cfg.ClientAddr(r))
	}
	return clientKey(r)
}

// clientKey is the address a request is charged to when nothing says otherwise: the TCP peer, never
// a header, because anyone can write X-Forwarded-For. IPv6 clients are grouped by /64, the block
// one subscriber usually gets, so rotating addresses inside it does not escape the limit.
func clientKey(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	return keyOf(a)
}

func keyOf(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// Password guessing. Every path that checks a password (the login form, HTTP Basic on any app
// request, /app/api/config included) goes through passwordOK: a failure costs a token of the
// client's address and one of the user name tried, and with either bucket empty the password is
// not even checked, so the answer says nothing. Per address: 5 at once, then one per 30 s (2,000
// guesses take 16 hours); per user name, from any number of addresses: 20, then one per 10 s
// (5.5 hours). A user whose name is being guessed keeps working with the cookie of an earlier
// login.
const (
	guessAddrRate, guessAddrBurst = 1.0 / 30, 5
	guessUserRate, guessUserBurst = 1.0 / 10, 20
	guessBuckets                  = 1 << 14
)

// guesses holds the two password-failure limiters.
type guesses struct {
	byAddr *limiter[netip.Prefix]
	byUser *limiter[string]
}

func newGuesses(now func() time.Time) guesses {
	return guesses{
		byAddr: newLimiter[netip.Prefix](guessAddrRate, guessAddrBurst, guessBuckets, now),
		byUser: newLimiter[string](guessUserRate, guessUserBurst, guessBuckets, now),
	}
}

// passwordOK checks user and pass for the request's address. limited reports a refusal by the
// limiter (the password was not checked), with the wait.
func (a *App) passwordOK(r *http.Request, user, pass string) (ok bool, limited time.Duration) {
	addr := a.clientKey(r)
	// Every check takes its token up front, so concurrent guesses cannot outrun the bucket; a
	// right password gives them back (scripts using HTTP Basic on every request pay nothing).
	if okA, wait := a.guess.byAddr.allow(addr, 1); !okA {
		return false, wait
	}
	if okU, wait := a.guess.byUser.allow(user, 1); !okU {
		a.guess.byAddr.refund(addr, 1)
		return false, wait
	}
	if a.checkPassword(user, pass) {
		a.guess.byAddr.refund(addr, 1)
		a.guess.byUser.refund(user, 1)
		return true, 0
	}
	return false, 0
}
