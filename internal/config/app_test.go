package config

import (
	"strings"
	"testing"
)

func loadEnv(t *testing.T, env map[string]string) (*Config, error) {
	t.Helper()
	var names []string
	for k := range env {
		names = append(names, k+"="+env[k])
	}
	return Load("", func(n string) (string, bool) { v, ok := env[n]; return v, ok }, names)
}

func TestAppSettings(t *testing.T) {
	prod := map[string]string{"DOMAIN_OR_PUBLIC_IP": "meet.example.com", "OPENVIDU_SECRET": "a-long-enough-secret"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name        string
		env         map[string]string
		private     bool
		users       int
		upstream    string
		errContains string
	}{
		{name: "dev is open", env: map[string]string{}, private: false},
		{name: "production is private", env: prod, private: true},
		{name: "production opened", env: with(prod, "PARLEY_APP_PRIVATE", "false"), private: false},
		{name: "dev with users is private", env: map[string]string{"PARLEY_APP_USERS": "ann:pw1,bob:p:w"}, private: true, users: 2},
		{name: "users and open contradict", env: map[string]string{"PARLEY_APP_USERS": "ann:pw", "PARLEY_APP_PRIVATE": "false"}, errContains: "PARLEY_APP_PRIVATE=false"},
		{name: "bad users", env: map[string]string{"PARLEY_APP_USERS": "ann"}, errContains: "PARLEY_APP_USERS is invalid"},
		{name: "upstream", env: map[string]string{"PARLEY_APP_UPSTREAM": "http://127.0.0.1:5442/"}, upstream: "http://127.0.0.1:5442"},
		{name: "upstream with path", env: map[string]string{"PARLEY_APP_UPSTREAM": "http://127.0.0.1:5442/app"}, errContains: "PARLEY_APP_UPSTREAM"},
		{name: "upstream without scheme", env: map[string]string{"PARLEY_APP_UPSTREAM": "127.0.0.1:5442"}, errContains: "PARLEY_APP_UPSTREAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadEnv(t, tc.env)
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.errContains)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error echoes a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.App.Private != tc.private || len(c.App.Users) != tc.users || c.App.Upstream != tc.upstream {
				t.Errorf("got private=%v users=%d upstream=%q", c.App.Private, len(c.App.Users), c.App.Upstream)
			}
			if c.App.MaxParticipants != 16 {
				t.Errorf("MaxParticipants = %d, want 16", c.App.MaxParticipants)
			}
		})
	}
}
