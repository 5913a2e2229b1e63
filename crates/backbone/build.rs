// Generates the ONNX protobuf types from the onnx.proto vendored from the
// `onnx` package (Apache-2.0). protox compiles it in Rust, so the build
// needs no protoc on the machine.
fn main() {
    let proto = "proto/onnx.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"]).expect("compiling onnx.proto");
    prost_build::Config::new().compile_fds(fds).expect("generating the ONNX protobuf types");
}
