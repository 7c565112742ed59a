// Package compose mixes the per-stream files of a recording into one COMPOSED file with ffmpeg
// (protocol note §10.1, outputMode COMPOSED, layout BEST_FIT).
//
// OpenVidu composes by screen-capturing a Chrome that joins the session; Parley records every
// stream on its own (package recording, INDIVIDUAL) and mixes those files afterwards in a single
// ffmpeg process, so no browser runs on the server and the mix can be redone from the tracks.
//
// The filter graph:
//
//	color=black (W×H, FrameRate, Duration) ─ overlay(tile 1) ─ overlay(tile 2) ─ … ─► H.264
//	track i video: shift by Offset → scale to fit its tile → letterbox (pad) ─┘
//	anullsrc (Duration) ─┬─ amix (normalize off, length of the first input) ─────► AAC | Opus
//	track i audio: fill gaps (aresample) → delay by Offset (adelay) ─┘
//
// Each track is placed at its true start: before its Offset its tile is black and its audio
// silent, and after it ends its tile goes black again (overlay eof_action=pass) until a track
// that starts later takes it, so the grid has as many tiles as there were videos at once, not
// as many as there were streams (assignTiles). Inputs are read
// with -reinit_filter 0 and every per-track filter copes with frames changing size (browsers
// change resolution mid-call), so a resolution change never rebuilds the graph and restarts the
// clock. Audio is summed, not averaged (amix normalize=0), so a speaker keeps their level however
// many tracks there are.
//
// ffmpeg and ffprobe come from the Debian ffmpeg package and are found on PATH; they run as
// processes (exec, never a shell). The output is written to a hidden temporary name next to Out
// and renamed when ffmpeg succeeds, so Out never holds half a file.
//
// While a call goes on, package recording mixes it in windows instead (MixLive: one ffmpeg reads
// the growing track files through pipes, from a keyframe near the window's first piece when that
// is far into a file, and writes the window as pieces), mixes what a stop
// leaves piece by piece (MixSegment), and appends the pieces into the MP4 as they come (Output).
//
// The package imports nothing of Parley's: package recording calls it with file names.
package compose
