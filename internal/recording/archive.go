package recording

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley/parley/internal/session"
)

// syncFileEntry is one stream of OpenVidu's INDIVIDUAL sync file <name>.json (protocol note §10.4).
type syncFileEntry struct {
	Name            string `json:"name"`
	ConnectionID    string `json:"connectionId"`
	StreamID        string `json:"streamId"`
	Size            int64  `json:"size"`
	ClientData      string `json:"clientData"`
	ServerData      string `json:"serverData"`
	HasAudio        bool   `json:"hasAudio"`
	HasVideo        bool   `json:"hasVideo"`
	TypeOfVideo     string `json:"typeOfVideo,omitempty"`
	StartTimeOffset int64  `json:"startTimeOffset"`
	EndTimeOffset   int64  `json:"endTimeOffset"`
}

type syncJSON struct {
	CreatedAt int64           `json:"createdAt"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	SessionID string          `json:"sessionId"`
	Files     []syncFileEntry `json:"files"`
}

// finalise turns the closed stream files into the recording's downloadable file and sets ready or
// failed. It runs on its own goroutine after stop.
func (r *Recorder) finalise(x *rec) {
	defer close(x.final)
	r.mu.Lock()
	info := x.info
	r.mu.Unlock()
	var file string
	var size int64
	var dur float64
	err := func() error {
		entries, werr := x.syncEntries()
		if werr != nil {
			return werr
		}
		if composed(info.Props) {
			return r.compose(x, info, entries, &file, &size)
		}
		var err error
		file, size, dur, err = x.zipIndividual(info, entries)
		if err == nil && len(entries) > 0 {
			info.Duration = dur
		}
		return err
	}()
	r.mu.Lock()
	if err != nil {
		r.failed.Add(1)
		x.info.Status, x.errText = session.RecordingFailed, err.Error()
		x.info.Size = dirSize(x.work)
	} else {
		x.info.Status, x.info.File, x.info.Size, x.info.Duration = session.RecordingReady, file, size, info.Duration
	}
	final := x.info
	r.mu.Unlock()
	r.save(x)
	if err != nil {
		r.log.Error("recording failed", "recording", final.ID, "session", final.Session, "error", err)
	} else {
		r.log.Info("recording ready", "recording", final.ID, "file", file, "size", size, "duration", final.Duration)
	}
	if err := r.s.RecordingStatus(final); err != nil {
		r.log.Warn("recording status not delivered", "recording", final.ID, "error", err)
	}
}

// syncEntries describes every closed stream file; a stream whose file could not be written fails
// the recording.
func (x *rec) syncEntries() ([]syncFileEntry, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []syncFileEntry
	for _, e := range x.done {
		if e.writeErr != nil {
			return nil, fmt.Errorf("writing %s: %w", e.file, e.writeErr)
		}
		if e.w.firstMs < 0 {
			// Nothing arrived (unpublished at once, or no keyframe ever): an empty file is noise.
			_ = os.Remove(e.w.path)
			continue
		}
		fi, err := os.Stat(e.w.path)
		if err != nil {
			return nil, err
		}
		se := syncFileEntry{Name: e.file, ConnectionID: string(e.rs.Connection), StreamID: string(e.rs.ID), Size: fi.Size(),
			ClientData: e.rs.ClientData, ServerData: e.rs.ServerData, HasAudio: e.audio, HasVideo: e.video,
			StartTimeOffset: (e.offset + time.Duration(e.w.firstMs)*time.Millisecond).Milliseconds(),
			EndTimeOffset:   (e.offset + time.Duration(e.w.endMs)*time.Millisecond).Milliseconds()}
		if e.video {
			se.TypeOfVideo = e.rs.Media.TypeOfVideo
		}
		out = append(out, se)
	}
	return out, nil
}

// zipIndividual writes <name>.json and <name>.zip (stored, not deflated: WebM is compressed
// already) and removes the loose files, as OpenVidu's layout has them only inside the zip.
func (x *rec) zipIndividual(info session.RecordingInfo, entries []syncFileEntry) (file string, size int64, dur float64, err error) {
	sj := syncJSON{CreatedAt: info.CreatedAt.UnixMilli(), ID: info.ID, Name: info.Name, SessionID: string(info.Session), Files: entries}
	if sj.Files == nil {
		sj.Files = []syncFileEntry{}
	}
	js, _ := json.Marshal(sj)
	jsonName := info.Name + ".json"
	if err := os.WriteFile(filepath.Join(x.dir, jsonName), js, 0o644); err != nil {
		return "", 0, 0, err
	}
	file = info.Name + ".zip"
	tmp := filepath.Join(x.dir, "."+file+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return "", 0, 0, err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	zw := zip.NewWriter(f)
	add := func(name string) error {
		src, err := os.Open(filepath.Join(x.work, name))
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: info.CreatedAt})
		if err != nil {
			return err
		}
		_, err = io.Copy(dst, src)
		return err
	}
	var minStart, maxEnd int64 = -1, 0
	for _, e := range entries {
		if err = add(e.Name); err != nil {
			_ = f.Close()
			return "", 0, 0, err
		}
		size += e.Size
		if minStart < 0 || e.StartTimeOffset < minStart {
			minStart = e.StartTimeOffset
		}
		maxEnd = max(maxEnd, e.EndTimeOffset)
	}
	if err = add(jsonName); err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, 0, err
	}
	if err = os.Rename(tmp, filepath.Join(x.dir, file)); err != nil {
		return "", 0, 0, err
	}
	for _, e := range entries {
		_ = os.Remove(filepath.Join(x.work, e.Name))
	}
	_ = os.Remove(filepath.Join(x.dir, jsonName))
	if minStart >= 0 {
		dur = float64(maxEnd-minStart) / 1000
	}
	return file, size, dur, nil
}

// compose mixes the stream files with the Composer into <name>.mp4 (or .webm without video) and a
// <id>.jpg thumbnail, then drops the working folder.
func (r *Recorder) compose(x *rec, info session.RecordingInfo, entries []syncFileEntry, file *string, size *int64) error {
	p := info.Props
	ext := ".webm"
	if p.HasVideo {
		ext = ".mp4"
	}
	*file = info.Name + ext
	out := filepath.Join(x.dir, *file)
	w, h := 1280, 720
	if _, err := fmt.Sscanf(strings.ToLower(p.Resolution), "%dx%d", &w, &h); err != nil {
		w, h = 1280, 720
	}
	if x.live != nil {
		if len(entries) == 0 {
			x.live.abort()
			return errors.New("nothing was published during the recording")
		}
		if err := r.finishLive(x, x.live, time.Duration(info.Duration*float64(time.Second))); err != nil {
			return fmt.Errorf("composing: %w (see %s)", err, filepath.Join(x.dir, ".compose.log"))
		}
		return r.composed(x, info, out, size)
	}
	job := ComposeJob{Out: out, Width: w, Height: h, FrameRate: p.FrameRate, HasAudio: p.HasAudio, HasVideo: p.HasVideo,
		Duration: time.Duration(info.Duration * float64(time.Second))}
	if job.FrameRate <= 0 {
		job.FrameRate = 25
	}
	for _, e := range entries {
		job.Tracks = append(job.Tracks, ComposeTrack{Path: filepath.Join(x.work, e.Name),
			Offset: time.Duration(e.StartTimeOffset) * time.Millisecond, HasAudio: e.HasAudio, HasVideo: e.HasVideo})
	}
	if len(job.Tracks) == 0 {
		return errors.New("nothing was published during the recording")
	}
	logf, err := os.Create(filepath.Join(x.dir, ".compose.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	job.Log = logf
	ctx := r.finalCtx
	if err := r.cfg.Composer.Run(ctx, job); err != nil {
		return fmt.Errorf("composing: %w (see %s)", err, filepath.Join(x.dir, ".compose.log"))
	}
	return r.composed(x, info, out, size)
}

// composed finishes a mixed recording: its size, the thumbnail, the working folders removed.
func (r *Recorder) composed(x *rec, info session.RecordingInfo, out string, size *int64) error {
	ctx := r.finalCtx
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	*size = fi.Size()
	if info.Props.HasVideo {
		if err := r.cfg.Composer.Thumbnail(ctx, out, filepath.Join(x.dir, info.ID+".jpg")); err != nil {
			r.log.Warn("no thumbnail for composed recording", "recording", info.ID, "error", err)
		}
	}
	_ = os.RemoveAll(x.work)
	_ = os.RemoveAll(filepath.Join(x.dir, "segments"))
	return nil
}
