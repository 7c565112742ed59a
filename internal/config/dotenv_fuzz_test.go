package config

import (
	"maps"
	"strings"
	"testing"
)

// FuzzParseDotenv checks the .env parser on any text: it never panics, every name it returns is a
// variable name, no value spans lines, a file reads as its lines read one by one (a later line
// wins), and what it returns, written back as NAME="value" lines, reads back the same.
func FuzzParseDotenv(f *testing.F) {
	for _, seed := range []string{
		"", "A=1\n", "# comment\n\nexport A = x y \r\n", "A=\"quoted # x\"\nB='s'\nC=\"\"\nD=\"open\n",
		"\uFEFFDOMAIN_OR_PUBLIC_IP=example.com\n", "ws.sessionReconnectionTime=10\n", "A=1\nA=2\n",
		"JUSTANAME\n", "=value\n", "MY VAR=1\n", "OPENVIDU_WEBRTC_ICE_SERVERS=[\"url=stun:a\"]\n", "A=\"\"\"\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got, err := ParseDotenv(text)
		// Line by line: the same verdict and the same result.
		lines := strings.Split(strings.TrimPrefix(text, "\uFEFF"), "\n")
		merged, lineErr := map[string]string{}, false
		for _, line := range lines {
			m, err := ParseDotenv(line)
			if err != nil {
				if !strings.HasPrefix(line, "\uFEFF") { // a mark only counts at the start of the file
					lineErr = true
				}
				continue
			}
			maps.Copy(merged, m)
		}
		if err != nil {
			if !lineErr && !anyLineHasMark(lines) {
				t.Fatalf("ParseDotenv(%q) = %v, but every line alone parses", text, err)
			}
			return
		}
		if lineErr {
			t.Fatalf("ParseDotenv(%q) accepted a line that alone is an error", text)
		}
		if !maps.Equal(got, merged) {
			t.Fatalf("ParseDotenv(%q) = %q, line by line %q", text, got, merged)
		}
		var out strings.Builder
		for k, v := range got {
			if !envNameRE.MatchString(k) {
				t.Fatalf("ParseDotenv(%q) returned the name %q", text, k)
			}
			if strings.Contains(v, "\n") {
				t.Fatalf("ParseDotenv(%q) returned %s=%q, a value over several lines", text, k, v)
			}
			out.WriteString(k + "=\"" + v + "\"\n")
		}
		again, err := ParseDotenv(out.String())
		if err != nil || !maps.Equal(again, got) {
			t.Fatalf("written back as %q, reads %q (%v), want %q", out.String(), again, err, got)
		}
	})
}

func anyLineHasMark(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "\uFEFF") {
			return true
		}
	}
	return false
}
