"""Wire objects of relay247: msgspec Structs only, no behaviour beyond validation."""
