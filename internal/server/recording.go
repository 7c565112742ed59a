package server

import (
	"context"
	"time"

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

var _ recording.SegmentComposer = composer{}

func (composer) SegmentLength(want time.Duration, fps int) time.Duration {
	return compose.SegmentLength(want, fps)
}

func (composer) LiveNice() int { return compose.LiveNice }

func (composer) segment(j recording.SegmentJob) compose.Segment {
	s := compose.Segment{Video: j.Video, Audio: j.Audio, From: j.From, Length: j.Length, Width: j.Width,
		Height: j.Height, FrameRate: j.FrameRate, Nice: j.Nice, Threads: j.Threads, Log: j.Log}
	for _, t := range j.Tracks {
		s.Tracks = append(s.Tracks, compose.Track{Path: t.Path, Offset: t.Offset, Length: t.Length, Since: t.Since,
			Until: t.Until, HasAudio: t.HasAudio, HasVideo: t.HasVideo, Stream: t.Stream})
	}
	return s
}

func (c composer) MixSegment(ctx context.Context, j recording.SegmentJob) error {
	return compose.MixSegment(ctx, c.segment(j))
}

func (c composer) MixLive(ctx context.Context, j recording.LiveJob) error {
	return compose.MixLive(ctx, compose.Live{Segment: c.segment(j.SegmentJob), Piece: j.Piece, First: j.First,
		Growing: j.Growing, Ready: j.Ready})
}

func (composer) NewOutput(path string) (recording.SegmentOutput, error) {
	return compose.NewOutput(path)
}
