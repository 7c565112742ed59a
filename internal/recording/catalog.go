package recording

// The recordings as REST reads them (get, list, delete, download) and the counters metrics
// scrape.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parley/parley/internal/session"
)

// Get returns one recording.
func (r *Recorder) Get(id string) (session.RecordingInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := r.recs[id]
	if x == nil {
		return session.RecordingInfo{}, errorf(session.KindNotFound, "recording %s not found", id)
	}
	return x.info, nil
}

// List returns every recording, oldest first.
func (r *Recorder) List() []session.RecordingInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]session.RecordingInfo, 0, len(r.recs))
	for _, x := range r.recs {
		out = append(out, x.info)
	}
	slices.SortFunc(out, func(a, b session.RecordingInfo) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Delete removes a finished recording and its folder.
func (r *Recorder) Delete(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := r.recs[id]
	if x == nil {
		return errorf(session.KindNotFound, "recording %s not found", id)
	}
	select {
	case <-x.final:
	default:
		return errorf(session.KindConflict, "recording %s is %s: stop it first", id, x.info.Status)
	}
	if err := os.RemoveAll(x.dir); err != nil {
		return errorf(session.KindInternal, "cannot delete recording %s: %v", id, err)
	}
	delete(r.recs, id)
	r.log.Info("recording deleted", "recording", id)
	return nil
}

// File returns the path of a file of a recording, for download. Names are checked: nothing
// outside the recording's folder, no hidden files.
func (r *Recorder) File(id, name string) (string, error) {
	if !validID(id) || !validName(name, true) {
		return "", errorf(session.KindNotFound, "no such recording file")
	}
	r.mu.Lock()
	x := r.recs[id]
	r.mu.Unlock()
	if x == nil {
		return "", errorf(session.KindNotFound, "recording %s not found", id)
	}
	p := filepath.Join(x.dir, name)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", errorf(session.KindNotFound, "no such recording file")
	}
	return p, nil
}

// SharedFile returns the path of a file of a recording this recorder does not know, when it is in
// this recorder's folder all the same: another node of a cluster wrote it to a folder both share.
func (r *Recorder) SharedFile(id, name string) (string, error) {
	if !validID(id) || !validName(name, true) {
		return "", errorf(session.KindNotFound, "no such recording file")
	}
	p := filepath.Join(r.cfg.Path, id, name)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", errorf(session.KindNotFound, "recording %s is on another node and its folder is not shared with this one", id)
	}
	return p, nil
}

// Stats are the recorder's counters, read by metrics at scrape time.
type Stats struct {
	Active  int    // recordings in progress
	Streams int    // stream files being written
	Dropped uint64 // packets writers could not keep up with, since start
	Failed  uint64 // recordings that ended failed (write errors, failed mixes), since start
}

// Stats reads the counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	active := make([]*rec, 0, len(r.active))
	for _, x := range r.active {
		active = append(active, x)
	}
	r.mu.Unlock()
	st := Stats{Active: len(active), Dropped: r.dropped.Load(), Failed: r.failed.Load()}
	for _, x := range active {
		x.mu.Lock()
		for _, e := range x.streams {
			if !e.closed {
				st.Streams++
				st.Dropped += e.w.drops.Load()
			}
		}
		x.mu.Unlock()
	}
	return st
}
