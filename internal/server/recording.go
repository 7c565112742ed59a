package server

import (
	"context"

	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/recording/compose"
)

// composer is the ffmpeg mixer (internal/recording/compose) as the recorder's Composer: the two
// packages know nothing of each other, so the job is copied field by field here.
type composer struct{}

var _ recording.Composer = composer{}

func (composer) Run(ctx context.Context, j recording.ComposeJob) error {
	cj := compose.Job{Out: j.Out, Width: j.Width, Height: j.Height, FrameRate: j.FrameRate,
		HasAudio: j.HasAudio, HasVideo: j.HasVideo, Duration: j.Duration, Log: j.Log}
	for _, t := range j.Tracks {
		cj.Tracks = append(cj.Tracks, compose.Track{Path: t.Path, Offset: t.Offset, HasAudio: t.HasAudio, HasVideo: t.HasVideo})
	}
	return compose.Run(ctx, cj)
}

func (composer) Thumbnail(ctx context.Context, video, jpg string) error {
	return compose.Thumbnail(ctx, video, jpg)
}
