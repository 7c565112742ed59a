package recording

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley/parley/internal/session"
)

// metaPrefix names the file in each recording folder that is the source of truth for listings
// (OpenVidu's layout, protocol note §10.4): recordings survive restarts because New reads them back.
const metaPrefix = ".recording."

// diskRecording is the JSON of .recording.<id>: OpenVidu's Recording object plus what Parley needs
// to rebuild it.
type diskRecording struct {
	ID                  string  `json:"id"`
	Object              string  `json:"object"`
	Name                string  `json:"name"`
	OutputMode          string  `json:"outputMode"`
	RecordingLayout     string  `json:"recordingLayout,omitempty"`
	CustomLayout        string  `json:"customLayout,omitempty"`
	Resolution          string  `json:"resolution,omitempty"`
	FrameRate           int     `json:"frameRate,omitempty"`
	ShmSize             int64   `json:"shmSize,omitempty"`
	IgnoreFailedStreams bool    `json:"ignoreFailedStreams,omitempty"`
	SessionID           string  `json:"sessionId"`
	UniqueSessionID     string  `json:"uniqueSessionId"`
	SessionCreatedAt    int64   `json:"sessionCreatedAt"`
	CreatedAt           int64   `json:"createdAt"`
	Size                int64   `json:"size"`
	Duration            float64 `json:"duration"`
	HasAudio            bool    `json:"hasAudio"`
	HasVideo            bool    `json:"hasVideo"`
	Status              string  `json:"status"`
	Reason              string  `json:"reason,omitempty"`
	File                string  `json:"file,omitempty"`
	// Error is why a recording failed, for operators (never sent to clients).
	Error string `json:"error,omitempty"`
}

func toDisk(r session.RecordingInfo, errText string) diskRecording {
	p := r.Props
	return diskRecording{ID: r.ID, Object: "recording", Name: r.Name, OutputMode: p.OutputMode, RecordingLayout: p.RecordingLayout,
		CustomLayout: p.CustomLayout, Resolution: p.Resolution, FrameRate: p.FrameRate, ShmSize: p.ShmSize,
		IgnoreFailedStreams: p.IgnoreFailedStreams, SessionID: string(r.Session),
		UniqueSessionID:  string(r.Session) + "_" + itoa(r.SessionCreatedAt.UnixMilli()),
		SessionCreatedAt: r.SessionCreatedAt.UnixMilli(), CreatedAt: r.CreatedAt.UnixMilli(), Size: r.Size, Duration: r.Duration,
		HasAudio: p.HasAudio, HasVideo: p.HasVideo, Status: r.Status, Reason: r.Reason, File: r.File, Error: errText}
}

func (d diskRecording) info() session.RecordingInfo {
	return session.RecordingInfo{ID: d.ID, Name: d.Name, Session: session.SessionID(d.SessionID),
		SessionCreatedAt: time.UnixMilli(d.SessionCreatedAt), CreatedAt: time.UnixMilli(d.CreatedAt),
		Props: session.RecordingProperties{Name: d.Name, HasAudio: d.HasAudio, HasVideo: d.HasVideo, OutputMode: d.OutputMode,
			RecordingLayout: d.RecordingLayout, CustomLayout: d.CustomLayout, Resolution: d.Resolution, FrameRate: d.FrameRate,
			ShmSize: d.ShmSize, IgnoreFailedStreams: d.IgnoreFailedStreams},
		Status: d.Status, Size: d.Size, Duration: d.Duration, File: d.File, Reason: d.Reason}
}

// saveMeta writes .recording.<id> atomically: a crash leaves the old or the new version, never half.
func saveMeta(dir string, d diskRecording) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	final := filepath.Join(dir, metaPrefix+d.ID)
	tmp := final + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, final)
}

// loadAll reads every recording folder under root.
func loadAll(root string) ([]diskRecording, []error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []diskRecording
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), metaPrefix+e.Name()))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		var d diskRecording
		if err := json.Unmarshal(b, &d); err != nil || d.ID != e.Name() {
			errs = append(errs, errors.New(e.Name()+": unreadable "+metaPrefix+" file"))
			continue
		}
		out = append(out, d)
	}
	return out, errs
}

// validID accepts recording ids and file names that stay inside their folder: OpenVidu ids are
// session ids with an optional ~N, names [a-zA-Z0-9_-~]; files add a dot for the extension.
func validID(s string) bool { return validName(s, false) }

func validName(s string, dots bool) bool {
	if s == "" || len(s) > 255 || strings.HasPrefix(s, ".") {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '~':
		case c == '.' && dots:
		default:
			return false
		}
	}
	return !strings.Contains(s, "..")
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
