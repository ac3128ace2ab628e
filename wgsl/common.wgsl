// The uniform block every pixelfly kernel reads: eight u32 sizes then eight f32 scalars.
// Each kernel's opening comment says which slot holds what. Sizes live here, never in the
// pipeline: a new batch size reuses the compiled pipeline.
struct Params {
  u0: u32, u1: u32, u2: u32, u3: u32, u4: u32, u5: u32, u6: u32, u7: u32,
  f0: f32, f1: f32, f2: f32, f3: f32, f4: f32, f5: f32, f6: f32, f7: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
