package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cookieName holds a signed login: base64url(user) "." expiry-unix "." hex(HMAC-SHA256).
const cookieName = "parley_app"

// loginTTL is how long a login lasts: a working day, so a meeting never ends on an expired cookie.
const loginTTL = 12 * time.Hour

// cookieKey derives the signing key from the OpenVidu secret rather than drawing a random one, so
// logins survive a restart and every node of a cluster accepts them. The label keeps the key
// distinct from any other use of the secret.
func cookieKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("parley app login cookie v1"))
	return m.Sum(nil)
}

func (a *App) sign(user string, exp int64) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + strconv.FormatInt(exp, 10)
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(payload))
	return payload + "." + hex.EncodeToString(m.Sum(nil))
}

// checkPassword compares digests in constant time and walks every user, so neither a length nor
// whether the user exists shows in the response time (ConstantTimeCompare returns early on a
// length mismatch, digests all have one length).
func (a *App) checkPassword(user, pass string) bool {
	uh, ph := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	ok := 0
	for u, p := range a.cfg.Users {
		eu, ep := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		ok |= subtle.ConstantTimeCompare(eu[:], uh[:]) & subtle.ConstantTimeCompare(ep[:], ph[:])
	}
	return ok == 1
}

// user returns who the request is logged in as: the cookie, or HTTP Basic credentials for scripts
// (curl -u). Empty: nobody.
func (a *App) user(r *http.Request) string {
	if u, p, ok := r.BasicAuth(); ok {
		if good, _ := a.passwordOK(r, u, p); good {
			return u
		}
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return ""
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || a.now().Unix() > exp {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return ""
	}
	user := string(raw)
	if !hmac.Equal([]byte(a.sign(user, exp)), []byte(c.Value)) {
		return ""
	}
	if _, still := a.cfg.Users[user]; !still {
		return "" // the operator removed this user: their cookie dies with the account
	}
	return user
}

func (a *App) setLogin(w http.ResponseWriter, user string) {
	exp := a.now().Add(loginTTL)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: a.sign(user, exp.Unix()), Path: "/", Expires: exp, MaxAge: int(loginTTL / time.Second),
		// Lax: sent when someone follows an invite link, never on another site's POST (CSRF).
		HttpOnly: true, Secure: !a.cfg.Dev, SameSite: http.SameSiteLaxMode,
	})
}

func (a *App) clearLogin(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: !a.cfg.Dev, SameSite: http.SameSiteLaxMode})
}
