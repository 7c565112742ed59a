package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// JoinJob appends the segments of a composition into its MP4.
type JoinJob struct {
	// Videos are the segments' .mp4 files, in order; Audios their .aac files (none: no audio).
	Videos, Audios []string
	// Out is the .mp4 to write.
	Out string
	// Log receives ffmpeg's command line and warnings; nil discards.
	Log io.Writer
}

// Join writes j.Out from the segments without re-encoding: the videos through ffmpeg's concat
// demuxer (the segments share their encoder settings and each starts with an IDR frame), the
// audio as one ADTS stream (the segments' frames end to end), remuxed with +faststart. Its cost
// is copying the bytes, a few seconds for an hour. Out is written under a temporary name and
// renamed when complete.
func Join(ctx context.Context, j JoinJob) error {
	if len(j.Videos) == 0 || j.Out == "" || len(j.Audios) != 0 && len(j.Audios) != len(j.Videos) {
		return fmt.Errorf("%w: join of %d videos and %d audios into %q", ErrInvalid, len(j.Videos), len(j.Audios), j.Out)
	}
	if err := haveTools(); err != nil {
		return err
	}
	log := &lockedWriter{w: j.Log}
	if j.Log == nil {
		log.w = io.Discard
	}
	dir := filepath.Dir(j.Out)
	list := filepath.Join(dir, "."+filepath.Base(j.Out)+".concat")
	audio := filepath.Join(dir, "."+filepath.Base(j.Out)+".aac")
	tmp := partName(j.Out)
	defer os.Remove(list)
	defer os.Remove(audio)
	var b strings.Builder
	b.WriteString("ffconcat version 1.0\n")
	for _, v := range j.Videos {
		abs, err := filepath.Abs(v)
		if err != nil {
			return err
		}
		b.WriteString("file " + concatQuote("file:"+abs) + "\n")
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return err
	}
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y",
		"-f", "concat", "-safe", "0", "-i", fileURL(list)}
	if len(j.Audios) > 0 {
		if err := catFiles(audio, j.Audios); err != nil {
			return err
		}
		args = append(args, "-f", "aac", "-i", fileURL(audio), "-map", "0:v:0", "-map", "1:a:0")
	} else {
		args = append(args, "-map", "0:v:0")
	}
	args = append(args, "-c", "copy", "-movflags", "+faststart", "-f", "mp4", fileURL(tmp))
	fmt.Fprintf(log, "join: ffmpeg %s\n", strings.Join(args, " "))
	// Full priority: the recording's users wait for it, and it is quick (a copy of the bytes).
	err := runFFmpeg(ctx, args, log, 0, nil)
	if err == nil {
		err = os.Rename(tmp, j.Out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("join %s: %w", j.Out, err)
	}
	return nil
}

// concatQuote quotes a path for an ffconcat script: single quotes, a quote itself as '\”.
func concatQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// catFiles writes the files one after the other into out.
func catFiles(out string, files []string) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	for _, p := range files {
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, src)
		src.Close()
		if err != nil {
			return errors.Join(fmt.Errorf("appending %s", p), err)
		}
	}
	return nil
}
