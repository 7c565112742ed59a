package config

import (
	"net/url"
	"strings"
)

// parseApp reads the PARLEY_APP_* settings. It lives apart from parse so the app's settings can grow
// without touching the shared function; it uses parse's own readers so problems are reported the
// same way.
func parseApp(c *Config, d modeDefaults, str func(name, def string) string, boolean func(name string, def bool) bool,
	num func(name string, def, lo, hi int) int, get Lookup, bad *problems) {
	a := &c.App
	if v := str("PARLEY_APP_USERS", ""); v != "" {
		a.Users = map[string]string{}
		for _, pair := range strings.Split(v, ",") {
			user, pass, ok := strings.Cut(strings.TrimSpace(pair), ":")
			if !ok || user == "" || pass == "" {
				// Never echo the value: it holds passwords.
				*bad = append(*bad, "PARLEY_APP_USERS is invalid: expected user:password pairs separated by commas")
				a.Users = nil
				break
			}
			a.Users[user] = pass
		}
	}
	// Closed in production, open in dev mode (modeDefaults) unless users were given.
	a.Private = boolean("PARLEY_APP_PRIVATE", d.AppPrivate || len(a.Users) > 0)
	if v, ok := get("PARLEY_APP_PRIVATE"); ok && v != "" && !a.Private && len(a.Users) > 0 {
		*bad = append(*bad, "PARLEY_APP_PRIVATE=false makes every room open, so PARLEY_APP_USERS would never be asked for: remove one of them")
	}
	a.MaxParticipants = num("PARLEY_APP_MAX_PARTICIPANTS", 16, 1, 1000)
	if v := str("PARLEY_APP_UPSTREAM", ""); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad.add("PARLEY_APP_UPSTREAM", v, "an http:// or https:// URL with a host and no path, e.g. http://127.0.0.1:5442")
		} else {
			a.Upstream = u.Scheme + "://" + u.Host
		}
	}
}
