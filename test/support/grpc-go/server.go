// An HTTP/2-only gRPC server built on grpc-go (Debian's golang-google-grpc-dev), independent
// of OmniRelay's own hosts: it serves omnirelay.controlplane.v1.ControlPlane/Ping and
// omnirelay.controlplane.v1.ControlPlaneStreams/Collect (client streaming: the sum of the
// requests' sequences) and /Chat (bidi: one response per request) without generated code (a
// hand-written ServiceDesc and a raw-bytes codec; the protobuf fields are encoded by hand), and
// grpc.health.v1.Health/Check (always SERVING). The streaming methods read the request
// metadata `x-mode`: `fail` ends the call with FAILED_PRECONDITION and an `x-reason` trailer
// (Chat after its second request); on success they set an `x-count` trailer. How each
// streaming call ended is printed on stderr: "stream <x-call-id> <method> <how>".
//
// Flags: -cert, -key (PEM), -ca (client CA bundle), -require-client-cert, -node (the name Ping
// answers with). Listens on 127.0.0.1:0 and prints "port <n>" on stdout once it accepts.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// rawCodec passes message bytes through untouched.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string   { return "proto" }
func (rawCodec) String() string { return "proto" }

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func readVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad varint")
}

// sequenceOf reads field 2 (uint64 sequence) of a PingRequest.
func sequenceOf(msg []byte) (uint64, error) {
	var seq uint64
	for len(msg) > 0 {
		key, n, err := readVarint(msg)
		if err != nil {
			return 0, err
		}
		msg = msg[n:]
		switch key & 7 {
		case 0:
			v, n, err := readVarint(msg)
			if err != nil {
				return 0, err
			}
			if key>>3 == 2 {
				seq = v
			}
			msg = msg[n:]
		case 2:
			l, n, err := readVarint(msg)
			if err != nil || uint64(len(msg)-n) < l {
				return 0, errors.New("bad length")
			}
			msg = msg[n+int(l):]
		default:
			return 0, errors.New("unexpected wire type")
		}
	}
	return seq, nil
}

func appendString(b []byte, field int, s string) []byte {
	if s == "" {
		return b
	}
	b = appendVarint(b, uint64(field<<3|2))
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

type server interface{}

func pingHandler(node string) func(interface{}, context.Context, func(interface{}) error, grpc.UnaryServerInterceptor) (interface{}, error) {
	return func(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		seq, err := sequenceOf(in)
		if err != nil {
			return nil, err
		}
		identity := ""
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
				identity = info.State.PeerCertificates[0].Subject.CommonName
			}
		}
		out := appendString(nil, 1, node)
		if seq != 0 {
			out = appendVarint(out, 2<<3|0)
			out = appendVarint(out, seq)
		}
		out = appendString(out, 3, identity)
		return &out, nil
	}
}

// pingResponse encodes a PingResponse{node, sequence}.
func pingResponse(node string, seq uint64) []byte {
	out := appendString(nil, 1, node)
	if seq != 0 {
		out = appendVarint(out, 2<<3|0)
		out = appendVarint(out, seq)
	}
	return out
}

// streamMeta is the x-mode and x-call-id request metadata of a streaming call.
func streamMeta(stream grpc.ServerStream) (mode string, id string) {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("x-mode"); len(v) > 0 {
		mode = v[0]
	}
	id = "none"
	if v := md.Get("x-call-id"); len(v) > 0 {
		id = v[0]
	}
	return mode, id
}

// recvEnd reports how a request stream ended: "end" at the client's half-close, else the status code.
func recvEnd(err error) string {
	if err == io.EOF {
		return "end"
	}
	return status.Code(err).String()
}

func collectHandler(_ interface{}, stream grpc.ServerStream) error {
	mode, id := streamMeta(stream)
	var sum, count uint64
	for {
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			fmt.Fprintf(os.Stderr, "stream %s Collect %s\n", id, recvEnd(err))
			if err != io.EOF {
				return err
			}
			break
		}
		seq, err := sequenceOf(in)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		sum += seq
		count++
	}
	if mode == "fail" {
		stream.SetTrailer(metadata.Pairs("x-reason", "asked-to-fail"))
		return status.Error(codes.FailedPrecondition, "collect was asked to fail")
	}
	stream.SetTrailer(metadata.Pairs("x-count", strconv.FormatUint(count, 10)))
	out := pingResponse("grpc-go", sum)
	return stream.SendMsg(&out)
}

func chatHandler(_ interface{}, stream grpc.ServerStream) error {
	mode, id := streamMeta(stream)
	var count uint64
	for {
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			fmt.Fprintf(os.Stderr, "stream %s Chat %s\n", id, recvEnd(err))
			if err != io.EOF {
				return err
			}
			break
		}
		seq, err := sequenceOf(in)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		count++
		if mode == "fail" && count == 2 {
			stream.SetTrailer(metadata.Pairs("x-reason", "asked-to-fail"))
			return status.Error(codes.FailedPrecondition, "chat was asked to fail")
		}
		out := pingResponse("grpc-go", seq)
		if err := stream.SendMsg(&out); err != nil {
			fmt.Fprintf(os.Stderr, "stream %s Chat send %s\n", id, status.Code(err).String())
			return err
		}
	}
	stream.SetTrailer(metadata.Pairs("x-count", strconv.FormatUint(count, 10)))
	return nil
}

func healthHandler(_ interface{}, _ context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	out := []byte{1<<3 | 0, 1} // HealthCheckResponse{status: SERVING}
	return &out, nil
}

func main() {
	certFile := flag.String("cert", "", "server certificate (PEM)")
	keyFile := flag.String("key", "", "server key (PEM)")
	caFile := flag.String("ca", "", "client CA bundle (PEM)")
	require := flag.Bool("require-client-cert", false, "require and verify a client certificate")
	node := flag.String("node", "grpc-go", "node name Ping answers with")
	flag.Parse()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load key pair:", err)
		os.Exit(2)
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if *caFile != "" {
		pem, err := ioutil.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "read CA:", err)
			os.Exit(2)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "no certificate in", *caFile)
			os.Exit(2)
		}
		config.ClientCAs = pool
		config.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if *require {
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}

	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(config)), grpc.CustomCodec(rawCodec{}))
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "omnirelay.controlplane.v1.ControlPlane",
		HandlerType: (*server)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Ping", Handler: pingHandler(*node)}},
	}, struct{}{})
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "omnirelay.controlplane.v1.ControlPlaneStreams",
		HandlerType: (*server)(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "Collect", Handler: collectHandler, ClientStreams: true},
			{StreamName: "Chat", Handler: chatHandler, ClientStreams: true, ServerStreams: true},
		},
	}, struct{}{})
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "grpc.health.v1.Health",
		HandlerType: (*server)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: healthHandler}},
	}, struct{}{})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	fmt.Printf("port %d\n", lis.Addr().(*net.TCPAddr).Port)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		s.Stop()
	}()
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
