//! Hostile inputs made on the fly for the test suites (the hostile plugins proper are components
//! in plugins/hostile, built by build.rs).

/// A component whose one core module has one function of about `size` bytes (within every compile
/// limit) that is costly to compile: 2000 locals, each defined from the one before, then a long run
/// of small blocks, then all locals summed. Every local is live across every block, so register
/// allocation's liveness grows with locals × blocks: 60 KB take more than 256 MiB to compile, 200 KB
/// half a minute and 700 MB (a debug build of the compiler).
pub fn expensive_component(size: usize) -> Vec<u8> {
    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    const LOCALS: u64 = 2000;
    // (i32) -> i32; local 0 is the parameter.
    let mut body = Vec::new();
    leb(1, &mut body); // one group of locals
    leb(LOCALS, &mut body);
    body.push(0x7f); // i32
    for i in 1..=LOCALS {
        // local[i] = local[i - 1] * local[0]: nothing to fold into a constant.
        body.push(0x20);
        leb(i - 1, &mut body);
        body.extend([0x20, 0x00, 0x6c, 0x21]); // local.get 0, i32.mul, local.set
        leb(i, &mut body);
    }
    let mut tail = vec![0x20, 0x01]; // local.get 1
    for i in 2..=LOCALS {
        tail.push(0x20);
        leb(i, &mut tail);
        tail.push(0x6a); // i32.add
    }
    tail.push(0x0b); // end
    // block; local.get 0; br_if 0; local.get 0; i32.const 1; i32.add; local.set 0; end
    let block = [
        0x02, 0x40, 0x20, 0x00, 0x0d, 0x00, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00, 0x0b,
    ];
    let size = size.min(crate::MAX_FUNCTION_SIZE - 16);
    while body.len() + tail.len() + block.len() < size {
        body.extend(block);
    }
    body.extend(tail);

    let mut code = Vec::new();
    leb(1, &mut code);
    leb(body.len() as u64, &mut code);
    code.extend(body);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.extend([1, 6, 1, 0x60, 1, 0x7f, 1, 0x7f]); // type section: (i32) -> i32
    module.extend([3, 2, 1, 0]); // function section: one function of type 0
    module.push(10);
    leb(code.len() as u64, &mut module);
    module.extend(code);
    // A component holding the module (compiled whether or not it is instantiated).
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    component.push(1); // core module section
    leb(module.len() as u64, &mut component);
    component.extend(module);
    component
}
