//! Tests of the extension payload codecs.
