// Command rtspcam is the browser suite's IP camera: it serves a test pattern (H.264, and AAC with
// -audio) over RTSP on loopback, prints its rtsp:// URL on one line, and runs until stdin closes or
// it is signalled.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/parley/parley/internal/ipcam/rtsptest"
)

func main() {
	audio := flag.Bool("audio", true, "send audio too")
	flag.Parse()
	dir, err := os.MkdirTemp("", "rtspcam")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cam, err := rtsptest.Start(dir, *audio)
	if err != nil {
		log.Fatal(err)
	}
	defer cam.Stop()
	fmt.Println(cam.URL)
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sig:
	}
}
